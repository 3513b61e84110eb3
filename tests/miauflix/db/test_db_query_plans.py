"""Every "pick the next item" query is an index lookup, shown by the databases' EXPLAIN.

SQLite: `EXPLAIN QUERY PLAN` must SEARCH each table through an index (never SCAN one).
PostgreSQL: with a handful of rows the planner rightly prefers a sequential scan, so the
test runs `SET LOCAL enable_seqscan = off` in its transaction: that proves the index is
usable for the query (what a large table would get), not what this tiny table gets.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession

from miauflix.db import (
    Database,
    MovieData,
    SeasonData,
    ShowData,
    SourceData,
    pick_movie_for_resync,
    pick_movie_for_source_search,
    pick_season_to_sync,
    pick_sources_for_stats,
    pick_sources_missing_file,
    upsert_movie,
    upsert_season,
    upsert_show,
    upsert_sources,
)

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
LATER = NOW + timedelta(minutes=1)

Pick = Callable[[AsyncSession], Awaitable[Any]]

PICKS: dict[str, tuple[Pick, str]] = {
    "source_search": (
        lambda s: pick_movie_for_source_search(s, now=LATER),
        "ix_movie_source_search_due",
    ),
    "resync": (lambda s: pick_movie_for_resync(s, now=LATER), "ix_movie_next_resync_at"),
    "season": (lambda s: pick_season_to_sync(s, now=LATER), "ix_season_next_sync_attempt_at"),
    "missing_file": (
        lambda s: pick_sources_missing_file(s, now=LATER, limit=5),
        "ix_movie_source_next_file_attempt_at",
    ),
    "stats": (
        lambda s: pick_sources_for_stats(s, now=LATER, limit=5),
        "ix_movie_source_next_stats_check_at",
    ),
}

TABLES = ("movie", "movie_source", "season", "tv_show", "episode")


async def _fill(database: Database) -> None:
    async with database.session() as session:
        for n in range(1, 4):
            movie_id = await upsert_movie(
                session, MovieData(tmdb_id=n, title=f"M{n}", imdb_id=f"tt{n}"), now=NOW
            )
            await upsert_sources(
                session,
                movie_id,
                [SourceData(f"{n:040x}", "magnet:?", "1080p", "yts")],
                now=NOW,
            )
        show_id = await upsert_show(session, ShowData(tmdb_id=1, name="S"), now=NOW)
        await upsert_season(session, show_id, SeasonData(1), now=NOW)


@contextmanager
def _captured_selects(database: Database) -> Iterator[list[tuple[str, Any]]]:
    captured: list[tuple[str, Any]] = []

    def before(
        _conn: Any, _cursor: Any, statement: str, parameters: Any, _ctx: Any, _many: bool
    ) -> None:
        if statement.lstrip().upper().startswith(("SELECT", "WITH")):
            captured.append((statement, parameters))

    event.listen(database.engine.sync_engine, "before_cursor_execute", before)
    try:
        yield captured
    finally:
        event.remove(database.engine.sync_engine, "before_cursor_execute", before)


async def _plan(session: AsyncSession, dialect: str, statement: str, parameters: Any) -> str:
    connection = await session.connection()
    if dialect == "sqlite":
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(str(row[-1]) for row in rows)
    await connection.exec_driver_sql("SET LOCAL enable_seqscan = off")
    rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
    return "\n".join(str(row[0]) for row in rows)


def _full_scans(dialect: str, plan: str) -> list[str]:
    if dialect == "sqlite":
        # "SCAN due" (a subquery) is fine; "SCAN movie" or "SCAN movie USING INDEX" is not.
        pattern = re.compile(rf"^\s*SCAN ({'|'.join(TABLES)})\b", re.MULTILINE)
    else:
        pattern = re.compile(r"Seq Scan", re.MULTILINE)
    return pattern.findall(plan)


@pytest.mark.parametrize("pick", list(PICKS))
async def test_pick_query_is_an_index_lookup(database: Database, pick: str) -> None:
    """Each pick query reads its table through its queue index, never by a full scan."""
    run, index = PICKS[pick]
    await _fill(database)
    with _captured_selects(database) as captured:
        async with database.session() as session:
            result = await run(session)
    assert result  # the data makes every pick find something, so every query ran
    async with database.session() as session:
        plans = [
            await _plan(session, database.dialect, statement, parameters)
            for statement, parameters in captured
        ]
    assert plans
    combined = "\n---\n".join(plans)
    assert index in plans[0], combined
    assert _full_scans(database.dialect, combined) == [], combined

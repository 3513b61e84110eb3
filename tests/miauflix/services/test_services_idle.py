"""An idle execution of each frequent task costs one SQL query (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any, cast

import pytest
from sqlalchemy import event

from miauflix.app import TASKS, MiauflixApp, TaskDefinition
from miauflix.db import (
    Database,
    MovieData,
    SeasonData,
    ShowData,
    SourceData,
    upsert_movie,
    upsert_season,
    upsert_show,
    upsert_sources,
)
from miauflix.services import MediaService, SourceService

from .conftest import FakeClock

# Transaction control and connection settings, not queries: SQLite's BEGIN and
# `PRAGMA query_only` come from `Database.read_session()`; COMMIT, ROLLBACK and SET are
# ignored too should a driver send them as statements (asyncpg and pysqlite do not).
IGNORED = ("BEGIN", "COMMIT", "ROLLBACK", "PRAGMA", "SET")
INFO_HASH = "d1" * 20


@contextmanager
def _statements(database: Database) -> Iterator[list[str]]:
    """Collect the SQL statements sent to `database` inside the block, ignoring `IGNORED`."""
    sent: list[str] = []

    def before_cursor_execute(
        conn: Any, cursor: Any, statement: str, *args: Any, **kwargs: Any
    ) -> None:
        if not statement.lstrip().upper().startswith(IGNORED):
            sent.append(statement)

    engine = database.engine.sync_engine
    event.listen(engine, "before_cursor_execute", before_cursor_execute)
    try:
        yield sent
    finally:
        event.remove(engine, "before_cursor_execute", before_cursor_execute)


async def _queue_one_of_each(database: Database, now: dt.datetime) -> None:
    """Store a season to sync, a movie to search, and a source lacking file, stats and type."""
    async with database.session() as session:
        show_id = await upsert_show(session, ShowData(1399, "Game of Thrones"), now=now)
        await upsert_season(session, show_id, SeasonData(1), now=now)
        movie_id = await upsert_movie(
            session, MovieData(550, "Fight Club", imdb_id="tt0137523"), now=now
        )
        await upsert_sources(
            session,
            movie_id,
            [SourceData(INFO_HASH, f"magnet:?xt=urn:btih:{INFO_HASH}", "1080p", "yts")],
            now=now,
        )


# The sub-minute tasks of the application's table.
FREQUENT_TASKS = [task for task in TASKS if task.interval < 60]


@pytest.mark.parametrize("task", FREQUENT_TASKS, ids=[task.name for task in FREQUENT_TASKS])
async def test_an_idle_frequent_task_sends_exactly_one_select(
    task: TaskDefinition,
    database: Database,
    media: MediaService,
    sources: SourceService,
    clock: FakeClock,
) -> None:
    """With items queued but none due yet, one execution sends one SELECT and nothing else."""
    await _queue_one_of_each(database, clock.now + dt.timedelta(minutes=10))

    with _statements(database) as sent:
        app = cast(MiauflixApp, SimpleNamespace(media=media, sources=sources))
        assert await task.method(app)() == 0

    assert len(sent) == 1, sent
    assert sent[0].lstrip().upper().startswith("SELECT"), sent

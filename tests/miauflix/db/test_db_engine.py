"""Opening the database: URL checks, SQLite settings, sessions, aware datetimes."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.ext.asyncio import create_async_engine

from miauflix.db import (
    Database,
    MovieData,
    SyncState,
    catalog_counts,
    get_sync_state,
    open_database,
    set_sync_state,
    upsert_movie,
)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql+aiomysql://u@127.0.0.1/db", "'mysql+aiomysql'"),
        ("sqlite:///plain.db", "'sqlite'"),
        ("sqlite+aiosqlite:///:memory:", "in-memory"),
        ("sqlite+aiosqlite://", "in-memory"),
        ("not a url", "'not a url'"),
    ],
)
async def test_open_database_rejects_unusable_urls(url: str, message: str) -> None:
    """An unsupported driver, an in-memory SQLite database or garbage raise ValueError."""
    with pytest.raises(ValueError, match=re.escape(message)):
        await open_database(url)


async def test_sqlite_file_gets_directory_wal_foreign_keys_and_busy_timeout(
    tmp_path: Path,
) -> None:
    """A SQLite URL creates the parent directory and every connection has the pragmas set."""
    path = tmp_path / "nested" / "dir" / "miauflix.sqlite3"
    async with await open_database(f"sqlite+aiosqlite:///{path}") as db:
        assert path.parent.is_dir()
        assert db.dialect == "sqlite"
        async with db.engine.connect() as connection:
            assert (await connection.exec_driver_sql("PRAGMA journal_mode")).scalar() == "wal"
            assert (await connection.exec_driver_sql("PRAGMA foreign_keys")).scalar() == 1
            assert (await connection.exec_driver_sql("PRAGMA busy_timeout")).scalar() == 10_000


async def test_session_commits_on_success_and_rolls_back_on_error(database: Database) -> None:
    """A session's block commits when it ends normally and rolls back when it raises."""
    moment = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    async with database.session() as session:
        await set_sync_state(session, "kept", moment)

    async def write_then_fail() -> None:
        async with database.session() as session:
            await set_sync_state(session, "discarded", moment)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        await write_then_fail()
    async with database.session() as session:
        assert await get_sync_state(session, "kept") == moment
        assert await get_sync_state(session, "discarded") is None


async def test_datetimes_read_back_aware_in_utc(database: Database) -> None:
    """A datetime written with any offset reads back as the same instant, aware, in UTC."""
    written = datetime(2026, 6, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=2)))
    async with database.session() as session:
        await set_sync_state(session, "checkpoint", written)
    async with database.session() as session:
        read = await session.scalar(select(SyncState.last_sync_at))
    assert read is not None
    assert read.tzinfo is not None
    assert read.utcoffset() == timedelta(0)
    assert read == written
    assert read.hour == 10


async def test_sqlite_stores_naive_utc_text(tmp_path: Path) -> None:
    """On SQLite the stored text is the UTC wall time, so text order is time order."""
    async with await open_database(f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite3'}") as db:
        await db.migrate()
        async with db.session() as session:
            await set_sync_state(
                session, "x", datetime(2026, 6, 1, 1, 0, tzinfo=timezone(timedelta(hours=3)))
            )
        async with db.session() as session:
            raw = await session.scalar(text("SELECT last_sync_at FROM sync_state"))
        assert raw == "2026-05-31 22:00:00.000000"


async def test_naive_datetimes_are_refused(database: Database) -> None:
    """A naive datetime is refused instead of being guessed at."""
    async with database.session() as session:
        with pytest.raises(ValueError, match="last_sync_at must be a timezone-aware"):
            await set_sync_state(session, "x", datetime(2026, 1, 1))
        session.add(SyncState(name="y", last_sync_at=datetime(2026, 1, 1)))
        with pytest.raises(StatementError, match="timezone-aware"):
            await session.flush()
        await session.rollback()


async def test_database_repr_hides_password() -> None:
    """The repr shows the URL without the password."""
    url = "postgresql+asyncpg://user:secret@127.0.0.1:1/db"
    db = Database(create_async_engine(url))
    try:
        assert "secret" not in repr(db)
        assert "***" in repr(db)
    finally:
        await db.aclose()


async def test_concurrent_read_then_write_sessions_do_not_fail(database: Database) -> None:
    """Sessions that read, yield to the loop, then write, all commit when run concurrently."""

    async def worker(n: int) -> None:
        async with database.session() as session:
            await catalog_counts(session)
            await asyncio.sleep(0)
            await upsert_movie(session, MovieData(tmdb_id=n, title=f"M{n}"), now=MOMENT)
            await set_sync_state(session, "shared", MOMENT)

    async with asyncio.timeout(30):
        await asyncio.gather(*(worker(n) for n in range(12)))
    async with database.session() as session:
        assert (await catalog_counts(session)).movies == 12


async def test_read_session_does_not_wait_for_an_open_write_transaction(
    database: Database,
) -> None:
    """A read session completes while another session holds an uncommitted write."""
    async with database.session() as session:
        await upsert_movie(session, MovieData(tmdb_id=1, title="Committed"), now=MOMENT)
    wrote = asyncio.Event()
    release = asyncio.Event()

    async def writer() -> None:
        async with database.session() as session:
            await upsert_movie(session, MovieData(tmdb_id=2, title="Pending"), now=MOMENT)
            wrote.set()
            await release.wait()

    async with asyncio.timeout(30), asyncio.TaskGroup() as tasks:
        tasks.create_task(writer())
        await wrote.wait()
        try:
            # A write session would queue behind the writer's lock for the busy timeout (10 s).
            async with asyncio.timeout(2), database.read_session() as session:
                counts = await catalog_counts(session)
        finally:
            release.set()
    assert counts.movies == 1
    async with database.read_session() as session:
        assert (await catalog_counts(session)).movies == 2


async def test_read_session_refuses_writes(database: Database) -> None:
    """A write in a read session fails; the pooled connection still writes in a session."""
    with pytest.raises(DBAPIError, match=r"read-?only"):
        async with database.read_session() as session:
            await set_sync_state(session, "refused", MOMENT)
    async with database.session() as session:
        await set_sync_state(session, "written", MOMENT)
    async with database.read_session() as session:
        assert await get_sync_state(session, "refused") is None
        assert await get_sync_state(session, "written") == MOMENT


MOMENT = datetime(2026, 1, 1, tzinfo=UTC)

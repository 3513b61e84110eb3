"""Fixtures shared by the miauflix tests: a migrated database on SQLite and on PostgreSQL."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from miauflix.db import Database, open_database

DATABASE_BACKENDS = [
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgresql", id="postgresql", marks=pytest.mark.external_service),
]


@pytest.fixture(params=DATABASE_BACKENDS)
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty database of its own: a temp SQLite file, or a fresh PostgreSQL schema.

    On PostgreSQL the URL logs in as a role created for this test whose own, fresh schema
    holds every table; both are dropped afterwards (closing any connection left open).
    """
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'data' / 'miauflix.sqlite3'}"
        return
    async with _postgres_schema(request.getfixturevalue("postgres_url")) as url:
        yield url


@asynccontextmanager
async def _postgres_schema(postgres_url: str) -> AsyncIterator[str]:
    server = make_url(postgres_url)
    # A role and a schema of the same name: PostgreSQL's default search_path ("$user", public)
    # puts every table of this test in that schema, so the URL alone isolates the test.
    # Creating and dropping a schema is much cheaper than a database (no checkpoint).
    name = f"miauflix_test_{uuid.uuid4().hex[:16]}"
    admin = create_async_engine(server, isolation_level="AUTOCOMMIT")
    try:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(f'CREATE ROLE "{name}" LOGIN')
            await connection.exec_driver_sql(f'CREATE SCHEMA "{name}" AUTHORIZATION "{name}"')
        yield server.set(username=name, password=None).render_as_string(hide_password=False)
    finally:
        async with admin.connect() as connection:
            await connection.exec_driver_sql(
                f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{name}'"
            )
            await connection.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
            await connection.exec_driver_sql(f'DROP ROLE IF EXISTS "{name}"')
        await admin.dispose()


@pytest.fixture
async def pg_database(postgres_url: str) -> AsyncIterator[Database]:
    """A migrated `Database` on a fresh PostgreSQL schema of its own (PostgreSQL-only tests)."""
    async with _postgres_schema(postgres_url) as url:
        db = await open_database(url)
        try:
            await db.migrate()
            yield db
        finally:
            await db.aclose()


@pytest.fixture
async def database(database_url: str) -> AsyncIterator[Database]:
    """An open `Database` migrated to the newest revision, closed after the test."""
    db = await open_database(database_url)
    try:
        await db.migrate()
        yield db
    finally:
        await db.aclose()

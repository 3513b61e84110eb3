"""The packaged Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

from miauflix.db import Base, Database, open_database

TABLES = {
    "episode",
    "genre",
    "genre_translation",
    "media_list",
    "media_list_movie",
    "media_list_show",
    "movie",
    "movie_genre",
    "movie_source",
    "movie_source_file",
    "movie_translation",
    "season",
    "show_genre",
    "sync_state",
    "tv_show",
}


def _tables(connection: Connection) -> set[str]:
    return set(inspect(connection).get_table_names()) - {"alembic_version"}


def _diff(connection: Connection) -> list[Any]:
    context = MigrationContext.configure(connection, opts={"compare_type": True})
    return list(compare_metadata(context, Base.metadata))


async def test_upgrade_creates_every_table(database_url: str) -> None:
    """Upgrading an empty database to head creates every table and records the revision."""
    async with await open_database(database_url) as db:
        assert await db.current_revision() is None
        await db.migrate()
        assert await db.current_revision() == "0004"
        async with db.engine.connect() as connection:
            assert await connection.run_sync(_tables) == TABLES


async def test_downgrade_to_base_drops_everything_and_upgrade_again_works(
    database: Database,
) -> None:
    """Downgrading to base leaves no table; upgrading again rebuilds the same schema."""
    await database.downgrade("base")
    assert await database.current_revision() is None
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_tables) == set()
    await database.migrate()
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_tables) == TABLES
        assert await connection.run_sync(_diff) == []


async def test_models_match_migrated_schema(database: Database) -> None:
    """Alembic's compare_metadata finds no difference between the models and the migrations."""
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_diff) == []


async def test_migrate_is_idempotent(database: Database) -> None:
    """Migrating an up-to-date database again changes nothing."""
    await database.migrate()
    assert await database.current_revision() == "0004"


def _claim_columns(connection: Connection) -> set[str]:
    inspector = inspect(connection)
    return {
        f"{table}.{column['name']}"
        for table in ("movie", "season", "movie_source")
        for column in inspector.get_columns(table)
        if column["name"].endswith("_claim")
    }


def _has_claim_sequence(connection: Connection) -> bool:
    if connection.dialect.name != "postgresql":
        return False
    return "miauflix_claim" in inspect(connection).get_sequence_names()


CLAIM_COLUMNS = {
    "movie.source_search_claim",
    "movie.resync_claim",
    "season.sync_claim",
    "movie_source.file_claim",
    "movie_source.stats_claim",
}


async def test_claims_revision_downgrades_and_upgrades(database: Database) -> None:
    """Revision 0003 adds the claim columns (and on PostgreSQL the sequence); 0002 drops them."""
    postgres = database.dialect == "postgresql"
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_claim_columns) == CLAIM_COLUMNS
        assert await connection.run_sync(_has_claim_sequence) is postgres
    await database.downgrade("0002")
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_claim_columns) == set()
        assert await connection.run_sync(_has_claim_sequence) is False
    await database.migrate()
    async with database.engine.connect() as connection:
        assert await connection.run_sync(_claim_columns) == CLAIM_COLUMNS
        assert await connection.run_sync(_diff) == []


async def test_replicas_starting_together_migrate_once(database_url: str) -> None:
    """Three databases migrating the same empty schema at once all end at head, without error."""
    databases = [await open_database(database_url) for _ in range(3)]
    try:
        async with asyncio.timeout(60):
            await asyncio.gather(*(db.migrate() for db in databases))
        assert {await db.current_revision() for db in databases} == {"0004"}
    finally:
        for db in databases:
            await db.aclose()

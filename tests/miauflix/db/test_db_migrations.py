"""The packaged Alembic migrations, on SQLite and PostgreSQL."""

from __future__ import annotations

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

"""The async engine, sessions and programmatic Alembic migrations."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.pool import ConnectionPoolEntry

from tickwork import Lease

if TYPE_CHECKING:
    from alembic.config import Config

__all__ = ["Database", "open_database"]

logger = logging.getLogger("miauflix.db")

# Alembic logs its plugin setup and every migration step at INFO: routine lines that would
# fill the service's default log at each start. `Database.migrate` logs the one line that
# matters; a user who configured the "alembic" logger keeps their level. Alembic itself is
# imported on first use, after this.
if logging.getLogger("alembic").level == logging.NOTSET:
    logging.getLogger("alembic").setLevel(logging.WARNING)

# Milliseconds a SQLite connection waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 10_000

_SUPPORTED_DRIVERS = ("sqlite+aiosqlite", "postgresql+asyncpg")

# pg_advisory_xact_lock key of `Database.migrate` (an arbitrary constant: "miau").
_MIGRATE_LOCK = 0x6D696175

# Execution option of the engine behind `Database.read_session`; `_on_begin` reads it.
_READ_ONLY = "miauflix_read_only"
# `ConnectionPoolEntry.info` key: the SQLite connection's current `PRAGMA query_only`.
_QUERY_ONLY = "miauflix_query_only"


class Database:
    """An open database: the engine, a session factory and the migrations.

    Create it with `open_database`. Sessions run one transaction each: `session` for work
    that writes (or may write), `read_session` for work that only reads.
    On SQLite a `session` starts with `BEGIN IMMEDIATE`, taking the write lock up front:
    a deferred transaction that read first and writes later fails with "database is locked"
    when another connection committed in between, and the busy timeout cannot help it.
    A `read_session` starts with a plain deferred `BEGIN` instead and, in WAL mode, reads a
    snapshot beside a writer without waiting for it.
    Do not keep a session open across network I/O: it would hold that lock.
    """

    def __init__(self, engine: AsyncEngine) -> None:
        """Wrap an engine made by `open_database` (which installs the SQLite hooks)."""
        self._engine = engine
        self.fencing_schema: str | None = None
        """The schema of a `PostgresCoordinator` on this same database, whose task rows
        `session(lease=...)` checks tokens against; None (the default): leases are not
        checked here (no coordinator, or one in another store)."""
        self._sessions = async_sessionmaker(engine, expire_on_commit=False)
        read_options: dict[str, Any] = {_READ_ONLY: True}
        if engine.dialect.name == "postgresql":
            # START TRANSACTION READ ONLY; the dialect resets it when the connection goes
            # back to the pool.
            read_options["postgresql_readonly"] = True
        self._read_sessions = async_sessionmaker(
            engine.execution_options(**read_options), expire_on_commit=False
        )

    def __repr__(self) -> str:
        return f"<Database {self.url.render_as_string(hide_password=True)}>"

    @property
    def engine(self) -> AsyncEngine:
        """The SQLAlchemy async engine."""
        return self._engine

    @property
    def url(self) -> URL:
        """The database URL (render it with `hide_password=True` before logging it)."""
        return self._engine.url

    @property
    def dialect(self) -> str:
        """The dialect name: `"sqlite"` or `"postgresql"`."""
        return self._engine.dialect.name

    @asynccontextmanager
    async def session(self, *, lease: Lease | None = None) -> AsyncIterator[AsyncSession]:
        """Open a session holding one transaction.

        The transaction commits when the block exits normally and rolls back when it raises.
        Objects stay readable after the block (`expire_on_commit=False`) but are detached.

        Args:
            lease: The coordinated run's lease (`tickwork.current_lease()`), or None. When
                `fencing_schema` is set, its fencing token is checked as the transaction's
                first statement (`tickwork.coordination.postgres.guard_sqlalchemy`), which
                also keeps every peer from being granted the task until the commit; a replica
                that lost its lease (paused, partitioned) writes nothing. Without it (SQLite,
                no coordinator, a coordinator in another store) the lease is not checked.

        Yields:
            The session.

        Raises:
            tickwork.LeaseLostError: `lease` is no longer current; nothing was written.
        """
        async with self._sessions() as session, session.begin():
            if lease is not None and self.fencing_schema is not None:
                from tickwork.coordination.postgres import guard_sqlalchemy

                await guard_sqlalchemy(session, lease, schema=self.fencing_schema)
            yield session

    @asynccontextmanager
    async def read_session(self) -> AsyncIterator[AsyncSession]:
        """Open a session holding one read-only transaction.

        Like `session`, but for work that only reads (the tasks' picks, the catalog counts).
        On SQLite the transaction starts with a deferred `BEGIN` under `PRAGMA query_only`:
        it takes no write lock, so it neither waits for a writer nor holds one up (WAL mode).
        On PostgreSQL it is a `READ ONLY` transaction. Either way a write in it fails with
        `sqlalchemy.exc.DBAPIError` ("readonly database" on SQLite, "read-only transaction"
        on PostgreSQL) instead of taking the lock late.

        Yields:
            The session.
        """
        async with self._read_sessions() as session, session.begin():
            yield session

    async def migrate(self, revision: str = "head") -> None:
        """Upgrade the schema to `revision` (default: the newest) with the packaged migrations.

        Args:
            revision: An Alembic revision id, or `"head"`.
        """
        logger.info("upgrading the database schema to %s", revision)
        async with self._engine.begin() as connection:
            if self.dialect == "postgresql":
                # Replicas starting together migrate once: the others wait here, then find
                # the schema at head. The lock ends with the migration's transaction.
                await connection.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_MIGRATE_LOCK})")
            await connection.run_sync(_upgrade, revision)

    async def downgrade(self, revision: str = "base") -> None:
        """Downgrade the schema to `revision` (default: `"base"`, no tables at all).

        Args:
            revision: An Alembic revision id, `"base"`, or a relative step such as `"-1"`.
        """
        logger.info("downgrading the database schema to %s", revision)
        async with self._engine.begin() as connection:
            await connection.run_sync(_downgrade, revision)

    async def current_revision(self) -> str | None:
        """Return the schema's Alembic revision, or None for an empty database."""
        async with self._engine.connect() as connection:
            return await connection.run_sync(_current_revision)

    async def aclose(self) -> None:
        """Close every pooled connection. The object must not be used afterwards."""
        await self._engine.dispose()

    async def __aenter__(self) -> Database:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


async def open_database(url: str, *, create_directory: bool = True) -> Database:
    """Create the engine for `url`, check that it connects, and return the `Database`.

    SQLite connections get WAL journaling, foreign keys and a busy timeout. The schema is not
    touched: call `Database.migrate()`.

    Args:
        url: `sqlite+aiosqlite:///PATH` or `postgresql+asyncpg://USER@HOST:PORT/DB`.
        create_directory: Create a SQLite file's missing parent directories (True), or raise
            `FileNotFoundError` naming the folder (False: a mistyped path is not silently
            created).

    Returns:
        The open database.

    Raises:
        ValueError: The URL is malformed, uses another driver, or names an in-memory SQLite
            database (each pooled connection would see its own empty database).
        FileNotFoundError: `create_directory` is False and a SQLite file's folder is missing.
        OSError: The database cannot be reached (e.g. `ConnectionRefusedError`).
    """
    try:
        parsed = make_url(url)
    except Exception as exc:
        raise ValueError(f"url must be a database URL, got {url!r}") from exc
    if parsed.drivername not in _SUPPORTED_DRIVERS:
        raise ValueError(
            f"url must use one of {', '.join(_SUPPORTED_DRIVERS)}, got {parsed.drivername!r}"
        )
    engine_args: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database or ""
        if database in ("", ":memory:") or "mode=memory" in url:
            raise ValueError(f"url must name a SQLite file, not an in-memory database, got {url!r}")
        await asyncio.to_thread(_parent_directory, database, create_directory)
        engine_args = {}
    engine = create_async_engine(parsed, **engine_args)
    if parsed.get_backend_name() == "sqlite":
        _install_sqlite_hooks(engine)
    try:
        async with engine.connect():
            pass
    except BaseException:
        await engine.dispose()
        raise
    logger.debug("opened %s", parsed.render_as_string(hide_password=True))
    return Database(engine)


def _parent_directory(database: str, create: bool) -> None:
    folder = Path(database).expanduser().parent
    if create:
        folder.mkdir(parents=True, exist_ok=True)
    elif not folder.is_dir():
        raise FileNotFoundError(f"the SQLite file's folder {str(folder)!r} does not exist")


def _install_sqlite_hooks(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        # Take transaction control away from the driver (it would not BEGIN before a SELECT
        # or a SAVEPOINT); `_on_begin` emits BEGIN itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            # Durable at each checkpoint, fast per commit: the WAL recipe from SQLite's docs.
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()
        record.info[_QUERY_ONLY] = False

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Connection) -> None:
        read_only = bool(connection.get_execution_options().get(_READ_ONLY, False))
        # query_only is per connection and outlives the transaction: switch it only when a
        # pooled connection goes from write to read work or back (one PRAGMA, no I/O).
        if connection.info.get(_QUERY_ONLY) is not read_only:
            connection.exec_driver_sql(f"PRAGMA query_only={'ON' if read_only else 'OFF'}")
            connection.info[_QUERY_ONLY] = read_only
        connection.exec_driver_sql("BEGIN" if read_only else "BEGIN IMMEDIATE")


def _alembic_config(connection: Connection) -> Config:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(Path(__file__).with_name("migrations")))
    config.attributes["connection"] = connection
    return config


def _upgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.upgrade(_alembic_config(connection), revision)


def _downgrade(connection: Connection, revision: str) -> None:
    from alembic import command

    command.downgrade(_alembic_config(connection), revision)


def _current_revision(connection: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    return MigrationContext.configure(connection).get_current_revision()

"""Alembic environment: runs on the connection `Database.migrate()` hands over.

There is no alembic.ini and no URL here: the application migrates its own database with
`await database.migrate()`. To write a new revision, open a scratch database, run
`alembic.command.revision(config, autogenerate=True, ...)` with a config built like
`miauflix.db._engine._alembic_config`, then edit the result by hand so it runs on both
SQLite and PostgreSQL.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from miauflix.db._models import Base

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "miauflix migrations run on an open connection: use miauflix.db.Database.migrate()"
    )

context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    # SQLite cannot ALTER most things; batch mode rebuilds the table instead.
    render_as_batch=True,
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()

"""Claim tokens for several replicas: five `*_claim` columns and the `miauflix_claim` sequence.

On PostgreSQL the five draining tasks claim their items (`miauflix.db._claims`): the claim
pushes the item's queue column forward on the database's clock (its expiry) and stores a
fresh token from the sequence in the queue's `*_claim` column; a write-back checks the token.
Existing rows get 0 (never claimed). SQLite serves one replica and never claims: the columns
are there and stay 0, and no sequence is created.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 07:10:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (table, column): one claim token per queue (see miauflix.db._models).
_CLAIMS = (
    ("movie", "source_search_claim"),
    ("movie", "resync_claim"),
    ("season", "sync_claim"),
    ("movie_source", "file_claim"),
    ("movie_source", "stats_claim"),
)


def upgrade() -> None:
    """Apply this revision."""
    for table, column in _CLAIMS:
        op.add_column(table, sa.Column(column, sa.BigInteger(), nullable=False, server_default="0"))
    if op.get_bind().dialect.name == "postgresql":
        op.execute("CREATE SEQUENCE IF NOT EXISTS miauflix_claim")


def downgrade() -> None:
    """Revert this revision."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP SEQUENCE IF EXISTS miauflix_claim")
    for table, column in reversed(_CLAIMS):
        op.drop_column(table, column)

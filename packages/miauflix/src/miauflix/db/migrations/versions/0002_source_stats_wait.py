"""Keep each source's last volatility wait: `movie_source.stats_wait_seconds`.

The stats task derived the previous wait from `next_stats_check_at - last_stats_check`, which
a failed check turns into a retry time. Rows checked before this revision have NULL: their
next check starts again from the minimum wait (6 h), then follows the rule.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-29 09:50:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column("movie_source", sa.Column("stats_wait_seconds", sa.Float(), nullable=True))


def downgrade() -> None:
    """Revert this revision."""
    # SQLite >= 3.35 drops a column in place (no table copy, constraints kept).
    op.drop_column("movie_source", "stats_wait_seconds")

"""Give each movie its own retry of the movie-changes sync: `movie.next_details_attempt_at`.

`syncMovies` used to fail a whole day of changes when one movie's details kept failing, so the
checkpoint stalled on that day. Now the day completes and the failing movie is queued here
with a per-item backoff (`details_failures` counts the streak).

Revision ID: 0004
Revises: 0002
Create Date: 2026-11-30 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.add_column(
        "movie", sa.Column("next_details_attempt_at", sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column(
        "movie",
        sa.Column("details_failures", sa.Integer(), nullable=False, server_default=sa.text("0")),
    )
    op.create_index(
        "ix_movie_next_details_attempt_at", "movie", ["next_details_attempt_at"], unique=False
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_index("ix_movie_next_details_attempt_at", table_name="movie")
    # SQLite >= 3.35 drops a column in place (no table copy, constraints kept).
    op.drop_column("movie", "details_failures")
    op.drop_column("movie", "next_details_attempt_at")

"""Issue 18: a per-movie details retry, and what the original backend keeps.

- `movie.next_details_attempt_at`, `movie.details_failures`: `syncMovies` used to fail a whole
  day of changes when one movie's details kept failing, so the checkpoint stalled on that day.
  Now the day completes and the failing movie is queued here with its own backoff.
- `movie.logo_url`; `movie_translation` (title, overview, tagline per language);
  `genre_translation` (a genre's name per language);
  `tv_show.tagline`, `type`, `in_production`, `episode_run_time`.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 07:00:00.000000
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
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
    op.add_column("movie", sa.Column("logo_url", sa.String(length=512), nullable=True))
    op.add_column(
        "tv_show",
        sa.Column("tagline", sa.String(length=512), nullable=False, server_default=""),
    )
    op.add_column("tv_show", sa.Column("type", sa.String(length=64), nullable=True))
    op.add_column("tv_show", sa.Column("in_production", sa.Boolean(), nullable=True))
    op.add_column("tv_show", sa.Column("episode_run_time", sa.Integer(), nullable=True))
    op.create_table(
        "movie_translation",
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("overview", sa.Text(), nullable=False),
        sa.Column("tagline", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["movie_id"],
            ["movie.id"],
            name=op.f("fk_movie_translation_movie_id_movie"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("movie_id", "language", name=op.f("pk_movie_translation")),
    )
    op.create_table(
        "genre_translation",
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.Column("language", sa.String(length=8), nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"],
            ["genre.id"],
            name=op.f("fk_genre_translation_genre_id_genre"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("genre_id", "language", name=op.f("pk_genre_translation")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("genre_translation")
    op.drop_table("movie_translation")
    for column in ("episode_run_time", "in_production", "type", "tagline"):
        op.drop_column("tv_show", column)
    op.drop_column("movie", "logo_url")
    op.drop_index("ix_movie_next_details_attempt_at", table_name="movie")
    # SQLite >= 3.35 drops a column in place (no table copy, constraints kept).
    op.drop_column("movie", "details_failures")
    op.drop_column("movie", "next_details_attempt_at")

"""Initial schema: the media catalogue, media lists, movie sources and sync checkpoints.

Written to run unchanged on SQLite and PostgreSQL. Downgrading drops every table
(their indexes go with them).

Revision ID: 0001
Revises:
Create Date: 2026-11-29 08:38:46.008167
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Apply this revision."""
    op.create_table(
        "genre",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("name", sa.String(length=128), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_genre")),
    )
    op.create_table(
        "media_list",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=128), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_media_list")),
        sa.UniqueConstraint("slug", name=op.f("uq_media_list_slug")),
    )
    op.create_table(
        "movie",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tmdb_id", sa.Integer(), nullable=False),
        sa.Column("imdb_id", sa.String(length=16), nullable=True),
        sa.Column("title", sa.String(length=512), nullable=False),
        sa.Column("original_title", sa.String(length=512), nullable=False),
        sa.Column("overview", sa.Text(), nullable=False),
        sa.Column("tagline", sa.String(length=512), nullable=False),
        sa.Column("release_date", sa.Date(), nullable=True),
        sa.Column("runtime", sa.Integer(), nullable=True),
        sa.Column("popularity", sa.Float(), nullable=False),
        sa.Column("rating", sa.Float(), nullable=False),
        sa.Column("vote_count", sa.Integer(), nullable=False),
        sa.Column("poster_url", sa.String(length=512), nullable=True),
        sa.Column("backdrop_url", sa.String(length=512), nullable=True),
        sa.Column("trailer_code", sa.String(length=64), nullable=True),
        sa.Column("searched_directories", sa.JSON(), nullable=False),
        sa.Column("last_source_search_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_source_search_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("source_search_failures", sa.Integer(), nullable=False),
        sa.Column("next_resync_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resync_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movie")),
        sa.UniqueConstraint("imdb_id", name=op.f("uq_movie_imdb_id")),
        sa.UniqueConstraint("tmdb_id", name=op.f("uq_movie_tmdb_id")),
    )
    op.create_index("ix_movie_next_resync_at", "movie", ["next_resync_at"], unique=False)
    op.create_index(
        "ix_movie_source_search_due",
        "movie",
        ["next_source_search_at"],
        unique=False,
        sqlite_where=sa.text("imdb_id IS NOT NULL"),
        postgresql_where=sa.text("imdb_id IS NOT NULL"),
    )
    op.create_table(
        "sync_state",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("last_sync_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sync_state")),
        sa.UniqueConstraint("name", name=op.f("uq_sync_state_name")),
    )
    op.create_table(
        "tv_show",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("tmdb_id", sa.Integer(), nullable=False),
        sa.Column("imdb_id", sa.String(length=16), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("original_name", sa.String(length=512), nullable=False),
        sa.Column("overview", sa.Text(), nullable=False),
        sa.Column("first_air_date", sa.Date(), nullable=True),
        sa.Column("popularity", sa.Float(), nullable=False),
        sa.Column("rating", sa.Float(), nullable=False),
        sa.Column("vote_count", sa.Integer(), nullable=False),
        sa.Column("status", sa.String(length=64), nullable=False),
        sa.Column("poster_url", sa.String(length=512), nullable=True),
        sa.Column("backdrop_url", sa.String(length=512), nullable=True),
        sa.Column("watching", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tv_show")),
        sa.UniqueConstraint("tmdb_id", name=op.f("uq_tv_show_tmdb_id")),
    )
    op.create_table(
        "media_list_movie",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["media_list.id"],
            name=op.f("fk_media_list_movie_list_id_media_list"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"],
            ["movie.id"],
            name=op.f("fk_media_list_movie_movie_id_movie"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "position", name=op.f("pk_media_list_movie")),
        sa.UniqueConstraint(
            "list_id", "movie_id", name=op.f("uq_media_list_movie_list_id_movie_id")
        ),
    )
    op.create_index(
        op.f("ix_media_list_movie_movie_id"), "media_list_movie", ["movie_id"], unique=False
    )
    op.create_table(
        "media_list_show",
        sa.Column("list_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["list_id"],
            ["media_list.id"],
            name=op.f("fk_media_list_show_list_id_media_list"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["tv_show.id"],
            name=op.f("fk_media_list_show_show_id_tv_show"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("list_id", "position", name=op.f("pk_media_list_show")),
        sa.UniqueConstraint("list_id", "show_id", name=op.f("uq_media_list_show_list_id_show_id")),
    )
    op.create_index(
        op.f("ix_media_list_show_show_id"), "media_list_show", ["show_id"], unique=False
    )
    op.create_table(
        "movie_genre",
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"],
            ["genre.id"],
            name=op.f("fk_movie_genre_genre_id_genre"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"],
            ["movie.id"],
            name=op.f("fk_movie_genre_movie_id_movie"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("movie_id", "genre_id", name=op.f("pk_movie_genre")),
    )
    op.create_index("ix_movie_genre_genre_id", "movie_genre", ["genre_id"], unique=False)
    op.create_table(
        "movie_source",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("movie_id", sa.Integer(), nullable=False),
        sa.Column("info_hash", sa.String(length=40), nullable=False),
        sa.Column("magnet_link", sa.Text(), nullable=False),
        sa.Column("download_url", sa.Text(), nullable=True),
        sa.Column("quality", sa.String(length=16), nullable=False),
        sa.Column("video_codec", sa.String(length=16), nullable=True),
        sa.Column("size_bytes", sa.BigInteger(), nullable=True),
        sa.Column("seeders", sa.Integer(), nullable=True),
        sa.Column("leechers", sa.Integer(), nullable=True),
        sa.Column("source_directory", sa.String(length=32), nullable=False),
        sa.Column("source_type", sa.String(length=16), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("has_file", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("next_file_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("file_failures", sa.Integer(), nullable=False),
        sa.Column("last_stats_check", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_stats_check_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("stats_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "length(info_hash) = 40 AND info_hash = lower(info_hash)",
            name=op.f("ck_movie_source_info_hash"),
        ),
        sa.ForeignKeyConstraint(
            ["movie_id"],
            ["movie.id"],
            name=op.f("fk_movie_source_movie_id_movie"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_movie_source")),
        sa.UniqueConstraint(
            "movie_id", "info_hash", name=op.f("uq_movie_source_movie_id_info_hash")
        ),
    )
    op.create_index(
        "ix_movie_source_next_file_attempt_at",
        "movie_source",
        ["next_file_attempt_at"],
        unique=False,
    )
    op.create_index(
        "ix_movie_source_next_stats_check_at", "movie_source", ["next_stats_check_at"], unique=False
    )
    op.create_table(
        "season",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("season_number", sa.Integer(), nullable=False),
        sa.Column("tmdb_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("overview", sa.Text(), nullable=False),
        sa.Column("air_date", sa.Date(), nullable=True),
        sa.Column("episode_count", sa.Integer(), nullable=True),
        sa.Column("poster_url", sa.String(length=512), nullable=True),
        sa.Column("synced", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("synced_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("next_sync_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("sync_failures", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["show_id"], ["tv_show.id"], name=op.f("fk_season_show_id_tv_show"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_season")),
        sa.UniqueConstraint(
            "show_id", "season_number", name=op.f("uq_season_show_id_season_number")
        ),
    )
    op.create_index(
        "ix_season_next_sync_attempt_at", "season", ["next_sync_attempt_at"], unique=False
    )
    op.create_table(
        "show_genre",
        sa.Column("show_id", sa.Integer(), nullable=False),
        sa.Column("genre_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["genre_id"],
            ["genre.id"],
            name=op.f("fk_show_genre_genre_id_genre"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["show_id"],
            ["tv_show.id"],
            name=op.f("fk_show_genre_show_id_tv_show"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("show_id", "genre_id", name=op.f("pk_show_genre")),
    )
    op.create_index("ix_show_genre_genre_id", "show_genre", ["genre_id"], unique=False)
    op.create_table(
        "episode",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("season_id", sa.Integer(), nullable=False),
        sa.Column("episode_number", sa.Integer(), nullable=False),
        sa.Column("tmdb_id", sa.Integer(), nullable=True),
        sa.Column("name", sa.String(length=512), nullable=False),
        sa.Column("overview", sa.Text(), nullable=False),
        sa.Column("air_date", sa.Date(), nullable=True),
        sa.Column("runtime", sa.Integer(), nullable=True),
        sa.Column("still_url", sa.String(length=512), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["season_id"],
            ["season.id"],
            name=op.f("fk_episode_season_id_season"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_episode")),
        sa.UniqueConstraint(
            "season_id", "episode_number", name=op.f("uq_episode_season_id_episode_number")
        ),
    )
    op.create_table(
        "movie_source_file",
        sa.Column("source_id", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["source_id"],
            ["movie_source.id"],
            name=op.f("fk_movie_source_file_source_id_movie_source"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("source_id", name=op.f("pk_movie_source_file")),
    )


def downgrade() -> None:
    """Revert this revision."""
    op.drop_table("movie_source_file")
    op.drop_table("episode")
    op.drop_table("show_genre")
    op.drop_table("season")
    op.drop_table("movie_source")
    op.drop_table("movie_genre")
    op.drop_table("media_list_show")
    op.drop_table("media_list_movie")
    op.drop_table("tv_show")
    op.drop_table("sync_state")
    op.drop_table("movie")
    op.drop_table("media_list")
    op.drop_table("genre")

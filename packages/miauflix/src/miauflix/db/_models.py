"""The ORM models: the media catalogue and the work queues of the scheduled tasks.

Work queues live in the rows themselves. Each queue is a nullable `next_*_at` column with its
own index: a row is queued when the column holds a time and due when that time has passed;
NULL means "nothing to do" (done, or given up). Failure counters beside each column let the
services compute a per-item backoff, so a failing item waits its turn instead of blocking the
queue or being retried ten times a second.

=========================  ==============================  ===============================
queue                      due when                        leaves the queue when
=========================  ==============================  ===============================
movie source search        movie.next_source_search_at     sources were found
movie source resync        movie.next_resync_at            no source lacks date or type
movie details retry        movie.next_details_attempt_at   its details were fetched
season sync                season.next_sync_attempt_at     the season is synced
source .torrent file       movie_source.next_file_attempt_at  the file is stored
source tracker stats       movie_source.next_stats_check_at   never (re-armed after a check)
=========================  ==============================  ===============================
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    CheckConstraint,
    Column,
    Date,
    Float,
    ForeignKey,
    Index,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
    text,
)
from sqlalchemy.ext.asyncio import AsyncAttrs
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from miauflix.db._types import UtcDateTime

__all__ = [
    "Base",
    "Episode",
    "Genre",
    "GenreTranslation",
    "MediaList",
    "MediaListMovie",
    "MediaListShow",
    "Movie",
    "MovieSource",
    "MovieSourceFile",
    "MovieTranslation",
    "Season",
    "SyncState",
    "TvShow",
    "movie_genre",
    "show_genre",
]

# Stable constraint names: the migrations refer to them, and SQLite's batch mode needs them.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(AsyncAttrs, DeclarativeBase):
    """Declarative base of every miauflix table.

    `AsyncAttrs` lets async code load a relationship explicitly:
    `await movie.awaitable_attrs.genres`.
    """

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UtcDateTime()}  # noqa: RUF012 (SQLAlchemy's ClassVar)


movie_genre = Table(
    "movie_genre",
    Base.metadata,
    Column("movie_id", ForeignKey("movie.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", ForeignKey("genre.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_movie_genre_genre_id", "genre_id"),
)

show_genre = Table(
    "show_genre",
    Base.metadata,
    Column("show_id", ForeignKey("tv_show.id", ondelete="CASCADE"), primary_key=True),
    Column("genre_id", ForeignKey("genre.id", ondelete="CASCADE"), primary_key=True),
    Index("ix_show_genre_genre_id", "genre_id"),
)


class Genre(Base):
    """A TMDB genre; the primary key is TMDB's genre id (movie and TV ids share one space)."""

    __tablename__ = "genre"

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(128))


class GenreTranslation(Base):
    """A genre's name in one language (TMDB's genre lists asked with `language`)."""

    __tablename__ = "genre_translation"

    genre_id: Mapped[int] = mapped_column(
        ForeignKey("genre.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(8), primary_key=True)  # ISO 639-1
    name: Mapped[str] = mapped_column(String(128))


class Movie(Base):
    """A movie from TMDB, with the queues of its source search and source resync."""

    __tablename__ = "movie"

    id: Mapped[int] = mapped_column(primary_key=True)
    tmdb_id: Mapped[int] = mapped_column(unique=True)
    imdb_id: Mapped[str | None] = mapped_column(String(16), unique=True)
    title: Mapped[str] = mapped_column(String(512))
    original_title: Mapped[str] = mapped_column(String(512), default="")
    overview: Mapped[str] = mapped_column(Text, default="")
    tagline: Mapped[str] = mapped_column(String(512), default="")
    release_date: Mapped[date | None] = mapped_column(Date)
    runtime: Mapped[int | None]  # minutes
    popularity: Mapped[float] = mapped_column(Float, default=0.0)
    rating: Mapped[float] = mapped_column(Float, default=0.0)  # TMDB vote average, 0-10
    vote_count: Mapped[int] = mapped_column(default=0)
    poster_url: Mapped[str | None] = mapped_column(String(512))
    backdrop_url: Mapped[str | None] = mapped_column(String(512))
    trailer_code: Mapped[str | None] = mapped_column(String(64))  # a YouTube video key
    logo_url: Mapped[str | None] = mapped_column(String(512))
    # Content directories already asked for sources, in the order they were first asked.
    searched_directories: Mapped[list[str]] = mapped_column(JSON, default=list)
    last_source_search_at: Mapped[datetime | None]
    next_source_search_at: Mapped[datetime | None]
    source_search_failures: Mapped[int] = mapped_column(default=0)
    next_resync_at: Mapped[datetime | None]
    resync_attempts: Mapped[int] = mapped_column(default=0)
    # Claim tokens (PostgreSQL, several replicas): the last claim of the item on its queue;
    # a write-back whose token is no longer this one comes from a stale claim and is refused.
    source_search_claim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    resync_claim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # A changed movie whose details kept failing: `syncMovies` retries it then (the day's
    # checkpoint has moved past its change).
    next_details_attempt_at: Mapped[datetime | None]
    details_failures: Mapped[int] = mapped_column(default=0, server_default=text("0"))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    genres: Mapped[list[Genre]] = relationship(secondary=movie_genre, order_by=Genre.id)
    translations: Mapped[list[MovieTranslation]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MovieTranslation.language"
    )
    sources: Mapped[list[MovieSource]] = relationship(
        back_populates="movie", cascade="all, delete-orphan", passive_deletes=True
    )

    __table_args__ = (
        # The source search pick: due movies with an IMDb id (directories search by it).
        Index(
            "ix_movie_source_search_due",
            "next_source_search_at",
            sqlite_where=text("imdb_id IS NOT NULL"),
            postgresql_where=text("imdb_id IS NOT NULL"),
        ),
        Index("ix_movie_next_resync_at", "next_resync_at"),
        Index("ix_movie_next_details_attempt_at", "next_details_attempt_at"),
    )

    def __repr__(self) -> str:
        return f"<Movie id={self.id} tmdb_id={self.tmdb_id} title={self.title!r}>"


class MovieTranslation(Base):
    """A movie's title, overview and tagline in one language (TMDB's translations)."""

    __tablename__ = "movie_translation"

    movie_id: Mapped[int] = mapped_column(
        ForeignKey("movie.id", ondelete="CASCADE"), primary_key=True
    )
    language: Mapped[str] = mapped_column(String(8), primary_key=True)  # ISO 639-1
    title: Mapped[str] = mapped_column(String(512), default="")
    overview: Mapped[str] = mapped_column(Text, default="")
    tagline: Mapped[str] = mapped_column(String(512), default="")


class TvShow(Base):
    """A TV show from TMDB."""

    __tablename__ = "tv_show"

    id: Mapped[int] = mapped_column(primary_key=True)
    tmdb_id: Mapped[int] = mapped_column(unique=True)
    imdb_id: Mapped[str | None] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(512))
    original_name: Mapped[str] = mapped_column(String(512), default="")
    overview: Mapped[str] = mapped_column(Text, default="")
    first_air_date: Mapped[date | None] = mapped_column(Date)
    popularity: Mapped[float] = mapped_column(Float, default=0.0)
    rating: Mapped[float] = mapped_column(Float, default=0.0)
    vote_count: Mapped[int] = mapped_column(default=0)
    status: Mapped[str] = mapped_column(String(64), default="")  # TMDB's, e.g. "Ended"
    tagline: Mapped[str] = mapped_column(String(512), default="", server_default="")
    type: Mapped[str | None] = mapped_column(String(64))  # TMDB's, e.g. "Scripted"
    in_production: Mapped[bool | None] = mapped_column(Boolean)
    episode_run_time: Mapped[int | None]  # minutes, TMDB's first figure
    poster_url: Mapped[str | None] = mapped_column(String(512))
    backdrop_url: Mapped[str | None] = mapped_column(String(512))
    watching: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    genres: Mapped[list[Genre]] = relationship(secondary=show_genre, order_by=Genre.id)
    seasons: Mapped[list[Season]] = relationship(
        back_populates="show",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Season.season_number",
    )

    def __repr__(self) -> str:
        return f"<TvShow id={self.id} tmdb_id={self.tmdb_id} name={self.name!r}>"


class Season(Base):
    """One season of a show, queued for an episode sync until `synced`."""

    __tablename__ = "season"

    id: Mapped[int] = mapped_column(primary_key=True)
    show_id: Mapped[int] = mapped_column(ForeignKey("tv_show.id", ondelete="CASCADE"))
    season_number: Mapped[int]
    tmdb_id: Mapped[int | None]
    name: Mapped[str] = mapped_column(String(512), default="")
    overview: Mapped[str] = mapped_column(Text, default="")
    air_date: Mapped[date | None] = mapped_column(Date)
    episode_count: Mapped[int | None]  # as announced by the show's details
    poster_url: Mapped[str | None] = mapped_column(String(512))
    synced: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    synced_at: Mapped[datetime | None]
    next_sync_attempt_at: Mapped[datetime | None]
    sync_failures: Mapped[int] = mapped_column(default=0)
    sync_claim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    show: Mapped[TvShow] = relationship(back_populates="seasons")
    episodes: Mapped[list[Episode]] = relationship(
        back_populates="season",
        cascade="all, delete-orphan",
        passive_deletes=True,
        order_by="Episode.episode_number",
    )

    __table_args__ = (
        UniqueConstraint("show_id", "season_number"),
        Index("ix_season_next_sync_attempt_at", "next_sync_attempt_at"),
    )

    def __repr__(self) -> str:
        return f"<Season id={self.id} show_id={self.show_id} number={self.season_number}>"


class Episode(Base):
    """One episode of a season."""

    __tablename__ = "episode"

    id: Mapped[int] = mapped_column(primary_key=True)
    season_id: Mapped[int] = mapped_column(ForeignKey("season.id", ondelete="CASCADE"))
    episode_number: Mapped[int]
    tmdb_id: Mapped[int | None]
    name: Mapped[str] = mapped_column(String(512), default="")
    overview: Mapped[str] = mapped_column(Text, default="")
    air_date: Mapped[date | None] = mapped_column(Date)
    runtime: Mapped[int | None]  # minutes
    still_url: Mapped[str | None] = mapped_column(String(512))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    season: Mapped[Season] = relationship(back_populates="episodes")

    __table_args__ = (UniqueConstraint("season_id", "episode_number"),)


class MediaList(Base):
    """A named, ordered list of movies and shows (e.g. TMDB's popular movies)."""

    __tablename__ = "media_list"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(String(128), unique=True)
    name: Mapped[str] = mapped_column(String(256))
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    movies: Mapped[list[MediaListMovie]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MediaListMovie.position"
    )
    shows: Mapped[list[MediaListShow]] = relationship(
        cascade="all, delete-orphan", passive_deletes=True, order_by="MediaListShow.position"
    )


class MediaListMovie(Base):
    """A movie's place in a list; `position` counts from 0."""

    __tablename__ = "media_list_movie"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("media_list.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    movie_id: Mapped[int] = mapped_column(ForeignKey("movie.id", ondelete="CASCADE"), index=True)

    movie: Mapped[Movie] = relationship()

    __table_args__ = (UniqueConstraint("list_id", "movie_id"),)


class MediaListShow(Base):
    """A show's place in a list; `position` counts from 0."""

    __tablename__ = "media_list_show"

    list_id: Mapped[int] = mapped_column(
        ForeignKey("media_list.id", ondelete="CASCADE"), primary_key=True
    )
    position: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    show_id: Mapped[int] = mapped_column(ForeignKey("tv_show.id", ondelete="CASCADE"), index=True)

    show: Mapped[TvShow] = relationship()

    __table_args__ = (UniqueConstraint("list_id", "show_id"),)


class MovieSource(Base):
    """A torrent of a movie found in a content directory, with its file and stats queues."""

    __tablename__ = "movie_source"

    id: Mapped[int] = mapped_column(primary_key=True)
    movie_id: Mapped[int] = mapped_column(ForeignKey("movie.id", ondelete="CASCADE"))
    info_hash: Mapped[str] = mapped_column(String(40))  # 40 lowercase hex digits (SHA-1)
    magnet_link: Mapped[str] = mapped_column(Text)
    download_url: Mapped[str | None] = mapped_column(Text)
    quality: Mapped[str] = mapped_column(String(16))  # "720p", "1080p", "2160p", "3D", ...
    video_codec: Mapped[str | None] = mapped_column(String(16))  # "x264", "x265", ...
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    seeders: Mapped[int | None]
    leechers: Mapped[int | None]
    source_directory: Mapped[str] = mapped_column(String(32))  # e.g. "yts"
    source_type: Mapped[str | None] = mapped_column(String(16))  # "web", "bluray", ...
    uploaded_at: Mapped[datetime | None]
    has_file: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    next_file_attempt_at: Mapped[datetime | None]
    file_failures: Mapped[int] = mapped_column(default=0)
    last_stats_check: Mapped[datetime | None]
    next_stats_check_at: Mapped[datetime | None]
    stats_failures: Mapped[int] = mapped_column(default=0)
    # The wait the last successful check chose (next - last check), in seconds: a failed
    # check moves next_stats_check_at to a retry time, so the two columns no longer tell it.
    stats_wait_seconds: Mapped[float | None] = mapped_column(Float)
    file_claim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    stats_claim: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    movie: Mapped[Movie] = relationship(back_populates="sources")

    __table_args__ = (
        UniqueConstraint("movie_id", "info_hash"),
        CheckConstraint("length(info_hash) = 40 AND info_hash = lower(info_hash)", "info_hash"),
        Index("ix_movie_source_next_file_attempt_at", "next_file_attempt_at"),
        Index("ix_movie_source_next_stats_check_at", "next_stats_check_at"),
    )

    def __repr__(self) -> str:
        return (
            f"<MovieSource id={self.id} movie_id={self.movie_id} "
            f"info_hash={self.info_hash} quality={self.quality!r}>"
        )


class MovieSourceFile(Base):
    """The `.torrent` bytes of a source, kept apart so the hot `movie_source` rows stay small.

    The stats task rewrites `movie_source` rows every few seconds; SQLite rewrites a whole row
    (overflow pages included) on update, and PostgreSQL copies the row version, so the tens
    of kilobytes of a torrent file live here, written once.
    """

    __tablename__ = "movie_source_file"

    source_id: Mapped[int] = mapped_column(
        ForeignKey("movie_source.id", ondelete="CASCADE"), primary_key=True
    )
    data: Mapped[bytes] = mapped_column(LargeBinary)
    stored_at: Mapped[datetime]


class SyncState(Base):
    """A named checkpoint, e.g. the last day of TMDB movie changes that was synced."""

    __tablename__ = "sync_state"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(64), unique=True)
    last_sync_at: Mapped[datetime]

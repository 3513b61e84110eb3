"""The miauflix database: models, engine, migrations and the repositories the tasks call.

```python
from miauflix.db import open_database, pick_movie_for_source_search

database = await open_database(settings.resolved_database_url)
await database.migrate()
async with database.read_session() as session:  # reads only; writes go in database.session()
    movie = await pick_movie_for_source_search(session, now=now)
await database.aclose()
```

Repositories take an `AsyncSession`, plain values and dataclasses (never provider objects),
and an explicit aware `now`; they never commit. Work queues are `next_*_at` columns: a row is
due when the time has passed, and NULL means it is off the queue (see `miauflix.db._models`).
"""

from miauflix.db._claims import (
    ClaimQueue,
    claim_movie_for_resync,
    claim_movie_for_source_search,
    claim_season_to_sync,
    claim_sources_for_stats,
    claim_sources_missing_file,
    held_claims,
)
from miauflix.db._engine import Database, open_database
from miauflix.db._lists import media_list_movie_ids, media_list_show_ids, replace_media_list
from miauflix.db._media import (
    clear_movie_details_retry,
    get_movie_by_tmdb_id,
    get_show_by_tmdb_id,
    mark_season_synced,
    movie_details_failures,
    movies_due_for_details,
    pick_season_to_sync,
    record_movie_details_failure,
    record_season_sync_failure,
    stored_movie_ids,
    upsert_episodes,
    upsert_genre_translations,
    upsert_genres,
    upsert_movie,
    upsert_season,
    upsert_show,
)
from miauflix.db._models import (
    Base,
    Episode,
    Genre,
    GenreTranslation,
    MediaList,
    MediaListMovie,
    MediaListShow,
    Movie,
    MovieSource,
    MovieSourceFile,
    MovieTranslation,
    Season,
    SyncState,
    TvShow,
)
from miauflix.db._records import (
    CatalogCounts,
    EpisodeData,
    GenreData,
    MediaListData,
    MovieData,
    SeasonData,
    ShowData,
    SourceData,
    TranslationData,
    normalize_info_hash,
)
from miauflix.db._sources import (
    QUALITY_RANK,
    get_source_file,
    list_movie_sources,
    pick_movie_for_resync,
    pick_movie_for_source_search,
    pick_sources_for_stats,
    pick_sources_missing_file,
    queue_source_search,
    record_file_failure,
    record_resync,
    record_source_search,
    record_source_search_failure,
    record_stats,
    record_stats_failure,
    store_source_file,
    upsert_sources,
)
from miauflix.db._state import catalog_counts, get_sync_state, set_sync_state
from miauflix.db._types import UtcDateTime

__all__ = [
    "QUALITY_RANK",
    "Base",
    "CatalogCounts",
    "ClaimQueue",
    "Database",
    "Episode",
    "EpisodeData",
    "Genre",
    "GenreData",
    "GenreTranslation",
    "MediaList",
    "MediaListData",
    "MediaListMovie",
    "MediaListShow",
    "Movie",
    "MovieData",
    "MovieSource",
    "MovieSourceFile",
    "MovieTranslation",
    "Season",
    "SeasonData",
    "ShowData",
    "SourceData",
    "SyncState",
    "TranslationData",
    "TvShow",
    "UtcDateTime",
    "catalog_counts",
    "claim_movie_for_resync",
    "claim_movie_for_source_search",
    "claim_season_to_sync",
    "claim_sources_for_stats",
    "claim_sources_missing_file",
    "clear_movie_details_retry",
    "get_movie_by_tmdb_id",
    "get_show_by_tmdb_id",
    "get_source_file",
    "get_sync_state",
    "held_claims",
    "list_movie_sources",
    "mark_season_synced",
    "media_list_movie_ids",
    "media_list_show_ids",
    "movie_details_failures",
    "movies_due_for_details",
    "normalize_info_hash",
    "open_database",
    "pick_movie_for_resync",
    "pick_movie_for_source_search",
    "pick_season_to_sync",
    "pick_sources_for_stats",
    "pick_sources_missing_file",
    "queue_source_search",
    "record_file_failure",
    "record_movie_details_failure",
    "record_resync",
    "record_season_sync_failure",
    "record_source_search",
    "record_source_search_failure",
    "record_stats",
    "record_stats_failure",
    "replace_media_list",
    "set_sync_state",
    "store_source_file",
    "stored_movie_ids",
    "upsert_episodes",
    "upsert_genre_translations",
    "upsert_genres",
    "upsert_movie",
    "upsert_season",
    "upsert_show",
    "upsert_sources",
]

"""``from_url``: a coordinator from a URL, as ``tickwork run --coordinator URL`` takes it."""

from __future__ import annotations

from tickwork.coordination._protocol import Coordinator

__all__ = ["from_url"]

_SCHEMES = {
    "postgresql": "postgres",
    "postgres": "postgres",
    "postgresql+asyncpg": "postgres",
    "redis": "redis",
    "rediss": "redis",
    "sqlite": "sqlite",
}


def from_url(url: str, *, cluster: str, ttl: float = 30.0) -> Coordinator:
    """Make the coordinator a URL names.

    ``postgresql://user@host/db`` (extra ``[postgres]``) or ``redis://host:6379/0`` (extra
    ``[redis]``), or ``sqlite:///path/schedule.sqlite3`` (standard library; one replica on one
    host: a durable schedule that survives restarts; ``sqlite:////abs/path`` for an absolute
    path).

    Args:
        url: The store's URL; its scheme picks the backend.
        cluster: The cluster name.
        ttl: The lease TTL in seconds.

    Raises:
        ValueError: The URL's scheme names no backend (the message lists the known ones).
        tickwork._extras.MissingExtraError: The backend's extra is not installed.
    """
    if not isinstance(url, str) or "://" not in url:
        raise ValueError(
            f"coordinator URL must look like postgresql://host/db, redis://host or "
            f"sqlite:///file, got {url!r}"
        )
    scheme = url.split("://", 1)[0].lower()
    backend = _SCHEMES.get(scheme)
    if backend == "postgres":
        from tickwork.coordination.postgres import PostgresCoordinator

        return PostgresCoordinator(url, cluster=cluster, ttl=ttl)
    if backend == "redis":
        from tickwork.coordination.redis import RedisCoordinator

        return RedisCoordinator(url, cluster=cluster, ttl=ttl)
    if backend == "sqlite":
        from tickwork.coordination.sqlite import SQLiteCoordinator

        # sqlite:///absolute/path or sqlite:///relative/path (SQLAlchemy's form) or sqlite://path
        path = url.split("://", 1)[1]
        path = path.removeprefix("/")
        if not path:
            raise ValueError(f"coordinator URL {url!r} names no SQLite file")
        return SQLiteCoordinator(path, cluster=cluster, ttl=ttl)
    known = ", ".join(sorted({f"{s}://" for s in _SCHEMES}))
    raise ValueError(f"coordinator URL scheme {scheme!r} is not supported (use one of: {known})")

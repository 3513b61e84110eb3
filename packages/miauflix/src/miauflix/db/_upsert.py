"""Statement helpers: `INSERT ... ON CONFLICT` for the two supported dialects, IN-list
chunks, and the counter a `RETURNING` clause gave back."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

__all__ = ["dialect_insert", "in_chunks", "returned_count"]

# Bound parameters per IN list: far below SQLite's and asyncpg's limits.
CHUNK = 500


def dialect_insert(session: AsyncSession, target: Any) -> postgresql.Insert | sqlite.Insert:
    """Return an insert construct with `on_conflict_do_*` for the session's dialect.

    Args:
        session: The session the statement will run in.
        target: A mapped class or a `Table`.

    Returns:
        The dialect's `Insert`.

    Raises:
        ValueError: The session is bound to another dialect.
    """
    name = session.get_bind().dialect.name
    if name == "postgresql":
        return postgresql.insert(target)
    if name == "sqlite":
        return sqlite.insert(target)
    raise ValueError(f"dialect must be sqlite or postgresql, got {name!r}")


def in_chunks(values: list[int]) -> list[list[int]]:
    """Split `values` into lists of at most `CHUNK` items for IN conditions."""
    return [values[start : start + CHUNK] for start in range(0, len(values), CHUNK)]


def returned_count(value: int | None, name: str, item_id: int) -> int:
    """The counter an `UPDATE ... RETURNING` gave back for one row.

    Raises:
        LookupError: `value` is None: no row has this id (`name` is the id's parameter name).
    """
    if value is None:
        raise LookupError(f"{name} {item_id!r} is not stored")
    return int(value)

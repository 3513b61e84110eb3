"""Typed reads from decoded JSON: a document of the wrong shape raises `ShapeError`.

The HTTP layer turns `ShapeError` into `BadResponse` naming the provider and path, so parsers
stay small: `req_int(movie, "id")`, `opt_str(movie, "tagline")`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any


class ShapeError(ValueError):
    """A JSON document does not have the shape the provider publishes."""


def obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise ShapeError(f"{what} must be an object, got {type(value).__name__}")
    return value


def arr(value: Any, what: str) -> list[Any]:
    if not isinstance(value, list):
        raise ShapeError(f"{what} must be an array, got {type(value).__name__}")
    return value


def req_obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    return obj(data.get(key), repr(key))


def opt_obj(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return {} if value is None else obj(value, repr(key))


def opt_arr(data: dict[str, Any], key: str) -> list[Any]:
    value = data.get(key)
    return [] if value is None else arr(value, repr(key))


def req_int(data: dict[str, Any], key: str) -> int:
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ShapeError(f"{key!r} must be an integer, got {value!r}")
    return value


def opt_int(data: dict[str, Any], key: str) -> int | None:
    if data.get(key) is None:
        return None
    return req_int(data, key)


def num(data: dict[str, Any], key: str, default: float = 0.0) -> float:
    value = data.get(key)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ShapeError(f"{key!r} must be a number, got {value!r}")
    return float(value)


def req_str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise ShapeError(f"{key!r} must be a string, got {value!r}")
    return value


def opt_str(data: dict[str, Any], key: str) -> str | None:
    """The string at `key`; None when absent, null or empty (TMDB sends "" for unknown)."""
    value = data.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ShapeError(f"{key!r} must be a string, got {value!r}")
    return value


def opt_date(data: dict[str, Any], key: str) -> dt.date | None:
    value = opt_str(data, key)
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value)
    except ValueError:
        raise ShapeError(f"{key!r} must be a YYYY-MM-DD date, got {value!r}") from None

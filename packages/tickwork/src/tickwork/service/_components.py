"""Named components an application reports under ``/status`` -> ``services``.

An application registers a zero-argument check per component (its database, an outside API)
with :func:`register_component`; the HTTP layer calls every check of a scheduler on each
``/status`` request, concurrently and each bounded by a timeout, so one slow or broken check
cannot hide the others.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import weakref
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, TypeAlias, get_args

from tickwork import Scheduler
from tickwork._spec import check_finite

__all__ = ["ComponentCheck", "ComponentState", "ComponentStatus", "register_component"]

logger = logging.getLogger("tickwork.service")

ComponentState: TypeAlias = Literal["ready", "degraded", "error", "needs_configuration"]
"""The states a component can report."""

_STATES: frozenset[str] = frozenset(get_args(ComponentState))

# Bounds what a component's reason can put into /status (it may quote an outside error).
MAX_REASON_LENGTH = 500


def truncate(text: str, limit: int = MAX_REASON_LENGTH) -> str:
    """Cut ``text`` to at most ``limit`` characters, marking the cut with an ellipsis."""
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


@dataclass(frozen=True)
class ComponentStatus:
    """What a component check reports.

    Args:
        status: One of ``"ready"``, ``"degraded"``, ``"error"``, ``"needs_configuration"``.
        reason: A short human-readable explanation, or None. Shown cut to 500 characters.
        details: JSON-safe extra data shown as is (counts, URLs without secrets).

    Raises:
        ValueError: ``status`` is not one of the four states.
        TypeError: ``reason`` is not a str or None, or ``details`` is not a mapping.
    """

    status: ComponentState
    reason: str | None = None
    details: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.status not in _STATES:
            raise ValueError(
                f"status must be one of {sorted(_STATES)}, got {self.status!r}",
            )
        if self.reason is not None and not isinstance(self.reason, str):
            raise TypeError(f"reason must be a str or None, got {self.reason!r}")
        if not isinstance(self.details, Mapping):
            raise TypeError(f"details must be a mapping, got {self.details!r}")

    def to_dict(self) -> dict[str, Any]:
        """Return the JSON-safe form shown under ``services`` in ``/status``."""
        return {
            "status": self.status,
            "reason": None if self.reason is None else truncate(self.reason),
            "details": dict(self.details),
        }


ComponentCheck: TypeAlias = Callable[[], "ComponentStatus | Awaitable[ComponentStatus]"]
"""A zero-argument callable, plain or async, returning a :class:`ComponentStatus`."""

# Keyed by the scheduler object itself, so a registry dies with its scheduler.
_registries: weakref.WeakKeyDictionary[Scheduler, dict[str, ComponentCheck]] = (
    weakref.WeakKeyDictionary()
)


def register_component(scheduler: Scheduler, name: str, check: ComponentCheck) -> None:
    """Register a named component whose status ``/status`` shows under ``services``.

    ``check`` is called on every ``/status`` request, in the event loop: a plain function
    must return at once (never block on I/O); an async one is awaited, bounded by a timeout
    (2 s by default) after which the component shows as ``"error"``. A check that raises shows
    as ``"error"`` with the exception as its reason.

    Args:
        scheduler: The :class:`tickwork.Scheduler` the component belongs to.
        name: A non-empty name, unique per scheduler.
        check: A zero-argument callable (plain or async) returning a :class:`ComponentStatus`.

    Raises:
        TypeError: ``name`` is not a str or ``check`` is not callable.
        ValueError: ``name`` is empty or already registered for this scheduler.
    """
    if not isinstance(scheduler, Scheduler):
        raise TypeError(f"scheduler must be a tickwork.Scheduler, got {scheduler!r}")
    if not isinstance(name, str):
        raise TypeError(f"name must be a str, got {name!r}")
    if not name:
        raise ValueError(f"name must be a non-empty str, got {name!r}")
    if not callable(check):
        raise TypeError(f"check must be callable, got {check!r}")
    registry = _registries.setdefault(scheduler, {})
    if name in registry:
        raise ValueError(f"component {name!r} is already registered")
    registry[name] = check


def registered_components(scheduler: Scheduler) -> dict[str, ComponentCheck]:
    """Return a copy of the checks registered for ``scheduler``, in registration order."""
    return dict(_registries.get(scheduler, {}))


async def _run_check(name: str, check: ComponentCheck, timeout: float) -> dict[str, Any]:
    try:
        async with asyncio.timeout(timeout):
            result = check()
            if inspect.isawaitable(result):
                result = await result
    except TimeoutError:
        return ComponentStatus("error", f"check timed out after {timeout:g} s").to_dict()
    except Exception as exc:
        logger.warning("Component check %s raised %s", name, type(exc).__name__, exc_info=True)
        return ComponentStatus("error", f"{type(exc).__name__}: {exc}").to_dict()
    if not isinstance(result, ComponentStatus):
        return ComponentStatus(
            "error", f"check returned {type(result).__name__}, not ComponentStatus"
        ).to_dict()
    return result.to_dict()


async def collect_components(scheduler: Scheduler, timeout: float = 2.0) -> dict[str, Any]:
    """Run every registered check of ``scheduler`` concurrently and return ``services``."""
    check_finite("timeout", timeout, zero=False)
    checks = registered_components(scheduler)
    results = await asyncio.gather(
        *(_run_check(name, check, timeout) for name, check in checks.items())
    )
    return dict(zip(checks, results, strict=True))

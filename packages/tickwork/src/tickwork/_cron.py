"""Cron expressions in a time zone: checking them, and the instants they match.

The expression is parsed and evaluated by ``cronsim`` (extra ``[cron]``), imported here on
first use only, so ``import tickwork`` stays standard-library only. ``cronsim`` follows Debian
cron's daylight-saving rules, which are the ones tickwork documents:

* a job with a fixed time of day whose time falls in the skipped hour (spring forward) runs
  once, right after the jump; one in the repeated hour (fall back) runs once, at the first
  occurrence;
* a job with a wildcard or step in the minute or hour field runs on the real timeline: no
  duplicate in the repeated hour, no burst after the skipped one.

(``croniter``, the other candidate, returns a fixed-time job twice on the fall-back day:
``tests/core/test_calendar.py`` pins the rules on both 2026 changes in two zones.)

What tickwork adds around it: the ``@hourly`` ... ``@yearly`` macros (a table, not a parser),
zone lookup, and error messages that name the field and the value.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from tickwork._extras import require_extra
from tickwork._spec import check_finite, check_name, check_task

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    from cronsim import CronSim

__all__ = ["CronExpression", "CronSpec", "cron_preview"]

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
# The five fields, the name cronsim's messages use for each, and the values each accepts.
_FIELDS = (
    ("minute", "minute", 0, 59),
    ("hour", "hour", 0, 23),
    ("day-of-month", "day-of-month", 1, 31),
    ("month", "month", 1, 12),
    ("day-of-week", "day-of-week", 0, 7),
)
_NUMBER = re.compile(r"\d+")
# The default misfire grace (seconds): an instant missed by at most this much still runs.
DEFAULT_GRACE = 3600.0


def _cronsim() -> tuple[type[CronSim], type[Exception]]:
    require_extra("Scheduler.schedule_cron", "cron", ("cronsim", "tzdata"))
    from cronsim import CronSim, CronSimError

    return CronSim, CronSimError


class CronExpression:
    """A checked cron expression and its zone: the instants it matches, as epoch seconds.

    Args:
        expression: Five fields (minute hour day-of-month month day-of-week) with ranges,
            steps, lists and names, or one of ``@hourly``, ``@daily``, ``@weekly``,
            ``@monthly``, ``@yearly`` (``@annually``, ``@midnight``).
        tz: An IANA zone name or a :class:`zoneinfo.ZoneInfo`.

    Raises:
        ValueError: The expression is invalid (the message names the field and the value:
            ``minute: 61 is out of range 0-59``), or the zone is unknown (named).
        TypeError: ``expression`` is not a str, or ``tz`` neither a str nor a ZoneInfo.
        tickwork.MissingExtraError: The ``[cron]`` extra is not installed.
    """

    __slots__ = ("_cronsim", "expression", "tz", "zone")

    def __init__(self, expression: str, tz: str | ZoneInfo = "UTC") -> None:
        if not isinstance(expression, str):
            raise TypeError(
                f"expression must be a str, got {type(expression).__name__} {expression!r}"
            )
        cronsim, error = _cronsim()
        self.zone = _zone(tz)
        self.tz = self.zone.key
        self.expression = " ".join(expression.split())
        fields = _MACROS.get(self.expression.lower(), self.expression)
        try:
            cronsim(fields, datetime.now(self.zone))
        except error as exc:
            raise ValueError(_explain(self.expression, fields, str(exc), cronsim, error)) from None
        self._cronsim: Callable[..., Iterator[datetime]] = lambda start, **kw: cronsim(
            fields, start, **kw
        )

    def after(self, epoch: float) -> Iterator[float]:
        """The matching instants strictly after ``epoch``, in order, as epoch seconds."""
        start = datetime.fromtimestamp(epoch, self.zone)
        for instant in self._cronsim(start):
            yield instant.timestamp()

    def first_after(self, epoch: float) -> float:
        """The first matching instant strictly after ``epoch``."""
        return next(self.after(epoch))

    def last_at_or_before(self, epoch: float) -> float:
        """The latest matching instant at or before ``epoch``."""
        # cronsim counts whole seconds and returns instants strictly before its start.
        start = datetime.fromtimestamp(math.floor(epoch), self.zone) + timedelta(seconds=1)
        return next(self._cronsim(start, reverse=True)).timestamp()

    def describe(self) -> dict[str, str]:
        """``{"kind": "cron", "expression": ..., "tz": ...}``, as status shows it."""
        return {"kind": "cron", "expression": self.expression, "tz": self.tz}

    def __repr__(self) -> str:
        return f"CronExpression({self.expression!r}, tz={self.tz!r})"


def _zone(tz: object) -> ZoneInfo:
    # Imported here: zoneinfo loads sysconfig, and ``import tickwork`` stays minimal.
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if isinstance(tz, ZoneInfo):
        return tz
    if not isinstance(tz, str):
        raise TypeError(f"tz must be an IANA zone name or a ZoneInfo, got {tz!r}")
    try:
        return ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"tz: unknown time zone {tz!r} (an IANA name, e.g. 'Europe/Rome')"
        ) from None


def _explain(
    expression: str,
    fields: str,
    message: str,
    cronsim: Callable[..., Any],
    error: type[Exception],
) -> str:
    """An error message naming the field and the value, from cronsim's ``Bad minute``."""
    parts = fields.split()
    if len(parts) != 5:
        return (
            f"expression must have 5 fields (minute hour day-of-month month day-of-week) or "
            f"be one of {', '.join(sorted(_MACROS))}, got {expression!r}"
        )
    now = datetime.now(UTC)
    for index, (field, label, low, high) in enumerate(_FIELDS):
        if label not in message:
            continue
        # The first list item that cronsim refuses on its own is the bad value.
        for item in parts[index].split(","):
            probe = ["*"] * 5
            probe[index] = item
            try:
                cronsim(" ".join(probe), now)
            except error:
                for number in _NUMBER.findall(item):
                    if not low <= int(number) <= high:
                        return f"{field}: {number} is out of range {low}-{high}"
                return f"{field}: {item!r} is not a valid value"
        return f"{field}: {parts[index]!r} is not a valid value"
    return f"invalid cron expression {expression!r}: {message}"


def cron_preview(expression: str, tz: str | ZoneInfo = "UTC", *, count: int = 10) -> list[float]:
    """The next ``count`` instants ``expression`` matches after now, as epoch seconds.

    Raises:
        ValueError: As :class:`CronExpression`; or ``count`` < 1.
    """
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise ValueError(f"count must be an int >= 1, got {count!r}")
    schedule = CronExpression(expression, tz)
    instants = schedule.after(datetime.now(UTC).timestamp())
    return [next(instants) for _ in range(count)]


@dataclass(frozen=True, slots=True)
class CronSpec:
    """One calendar task's registration, for :meth:`Scheduler.schedule_tasks`.

    The fields mean what the parameters of :meth:`Scheduler.schedule_cron` of the same names
    mean; they are checked when the spec is created (which imports the ``[cron]`` extra).

    Attributes:
        name: Unique, non-empty task name.
        expression: The cron expression.
        task: Zero-argument coroutine function or plain function.
        tz: IANA zone name or ZoneInfo the expression is read in.
        timeout: Seconds an execution may run, or None.
        jitter: Up to this many random seconds are added to each instant.
        singleton: With a coordinator: one run per instant cluster-wide (True) or every
            replica runs it (False).
        max_backoff: Cap of the doubling wait between retries, or None (retry at once).
        retries: Retries of a failed run, before the next instant.
        misfire_grace: Seconds an instant may be late and still run.
    """

    name: str
    expression: str
    task: Callable[[], Any]
    tz: str | ZoneInfo = "UTC"
    timeout: float | None = None
    jitter: float = 0.0
    singleton: bool = True
    max_backoff: float | None = None
    retries: int = 0
    misfire_grace: float = DEFAULT_GRACE

    def __post_init__(self) -> None:
        check_name(self.name)
        check_task(self.task)
        check_cron_options(self.timeout, self.jitter, self.max_backoff, self.retries)
        object.__setattr__(self, "misfire_grace", check_finite("misfire_grace", self.misfire_grace))
        if not isinstance(self.singleton, bool):
            raise TypeError(f"singleton must be a bool, got {self.singleton!r}")
        CronExpression(self.expression, self.tz)


def check_cron_options(
    timeout: float | None, jitter: float, max_backoff: float | None, retries: int
) -> None:
    """The checks of ``schedule_cron``'s numeric options (``TaskSpec``'s, plus ``retries``)."""
    if timeout is not None:
        check_finite("timeout", timeout, zero=False)
    check_finite("jitter", jitter)
    if max_backoff is not None:
        check_finite("max_backoff", max_backoff)
    if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
        raise ValueError(f"retries must be an int >= 0, got {retries!r}")

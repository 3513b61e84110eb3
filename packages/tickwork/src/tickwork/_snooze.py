"""``Snooze``: a body ends its run on purpose, to be tried again later, without an error.

Also the bound on the outcome reasons the core keeps (``bounded``), shared by the runner's
status and the execution hooks.
"""

from __future__ import annotations

from tickwork._spec import check_finite

__all__ = ["MAX_REASON", "Snooze", "bounded"]

# Characters of an outcome's reason (a snooze's reason, a failure's error text) that status
# and the hooks keep: a message that embeds a whole response body must not be copied per run.
MAX_REASON = 500


def bounded(text: str) -> str:
    """Return ``text`` cut to ``MAX_REASON`` characters, ending in "…" when cut."""
    if len(text) <= MAX_REASON:
        return text
    return text[: MAX_REASON - 1] + "…"


class Snooze(Exception):
    """Raised by a task body to end its run as *snoozed*: not now, again in ``seconds``.

    Oban's ``{:snooze, seconds}`` is the model: the body finds it cannot do its work now (a
    provider is down, a quota is spent) and says when to try again::

        async def sync() -> None:
            if provider.down:
                raise tickwork.Snooze(45, "tmdb unreachable (connect error)")
            ...

    The run ends with the outcome ``"snoozed"``: it counts in ``runs``, not in ``failures``; a
    streak of failures (and so the backoff) stays as it was, neither extended nor ended; nothing
    is logged above DEBUG. The next run starts ``seconds`` after this one ended, instead of
    the interval (no backoff, no jitter). Until then the task's state is ``"snoozed"`` and
    its :class:`tickwork.TaskStatus` has ``last_outcome="snoozed"`` and the reason in
    ``last_outcome_reason``; hooks get both in :class:`tickwork.ExecutionResult`. In a
    calendar task (``schedule_cron``) the snooze defers that instant's run: it runs again
    ``seconds`` later if that is before the next instant (without using up a retry), and
    otherwise the next instant runs as usual (as Oban does with a snoozed cron job).

    It works the same from a coroutine function and from a plain function (raised in its
    worker thread), within a timeout, and in a coordinated singleton task (the lease is
    released with the snooze as the wait, so no replica runs the task before it ends).

    ``Snooze`` derives from ``Exception`` so that a task's own error handling sees it as any
    exception; a body that catches ``Exception`` around the code that snoozes must re-raise it.
    A ``Snooze`` inside an ``ExceptionGroup`` is a failure, like any exception group.

    Args:
        seconds: Seconds from the end of this run to the next start: a finite number ``>= 0``
            (0 runs the task again at once).
        reason: Why, in a few words, for status and the status page; None for none. Status
            and hooks keep its first 500 characters.

    Attributes:
        seconds: As given, as a float.
        reason: As given.

    Raises:
        TypeError: ``seconds`` is not a real number, or ``reason`` is not a str or None.
        ValueError: ``seconds`` is negative, NaN or infinite.
    """

    seconds: float
    reason: str | None

    def __init__(self, seconds: float, reason: str | None = None) -> None:
        self.seconds = check_finite("seconds", seconds)
        if reason is not None and not isinstance(reason, str):
            raise TypeError(f"reason must be a str or None, got {type(reason).__name__} {reason!r}")
        self.reason = reason
        super().__init__(self.seconds, reason)

    def __str__(self) -> str:
        text = f"snoozed for {self.seconds:g} s"
        return text if self.reason is None else f"{text}: {self.reason}"

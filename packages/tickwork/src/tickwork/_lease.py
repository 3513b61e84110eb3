"""The lease of a coordinated run: its fencing token, and ``current_lease()`` inside the body.

A coordinated (singleton) run holds a lease granted by the coordinator. The lease's ``token``
strictly increases with every grant of that task cluster-wide, so data written under it can
refuse a writer whose token is no longer current (fencing). Locally the lease is valid until a
deadline measured on a clock that counts host suspend (``CLOCK_BOOTTIME``), slightly shorter
than the TTL the coordinator granted; a renewal moves the deadline, a renewal the coordinator
refuses (the task was granted to another replica) or a deadline passed marks it lost.
"""

from __future__ import annotations

import contextvars
import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["Lease", "LeaseLostError", "current_lease"]


class LeaseLostError(Exception):
    """The lease of this run is no longer current: its writes must not happen.

    Raised by :meth:`Lease.check` and by the fenced-write helpers of the coordination backends.
    A body that lets it escape ends its run with the outcome ``lease_lost``: no traceback, no
    backoff, not counted as a failure.

    Attributes:
        code: ``"lease_lost"``.
        task: The task whose lease was lost.
        token: The token of the lost lease.
    """

    code = "lease_lost"

    def __init__(self, task: str, token: int, reason: str) -> None:
        self.task = task
        self.token = token
        self.reason = reason
        super().__init__(f"task {task!r}: lease with token {token} lost ({reason})")

    def __reduce__(self) -> tuple[type[LeaseLostError], tuple[str, int, str]]:
        return (type(self), (self.task, self.token, self.reason))


@dataclass(eq=False)
class Lease:
    """The lease a coordinated run holds; ``current_lease()`` returns it inside the body.

    Attributes:
        task: The task name.
        token: The fencing token: strictly greater than every earlier grant of this task in
            the cluster.
        replica: The id of the replica holding it.
        cluster: The cluster name.
        ttl: The lease's time to live in seconds, as granted (renewed while the run lasts).
    """

    task: str
    token: int
    replica: str
    cluster: str
    ttl: float
    _valid_until: float = field(repr=False)
    _lost: str | None = field(default=None, repr=False)
    # The clock of _valid_until: one that counts host suspend (see tickwork._clock).
    _clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @property
    def lost(self) -> bool:
        """True once the lease is known lost here (superseded, or its deadline passed)."""
        if self._lost is None and self._clock() >= self._valid_until:
            self._lost = "its deadline passed without a renewal"
        return self._lost is not None

    def valid(self) -> bool:
        """True while this replica may still act under the lease (not lost, not expired)."""
        return not self.lost

    def check(self) -> None:
        """Raise :class:`LeaseLostError` if the lease is lost; return otherwise.

        This is the local view: a write to shared data must also be fenced where it happens
        (see ``tickwork.coordination.postgres.guard``), since a paused process cannot know it
        was paused.
        """
        if self.lost:
            raise LeaseLostError(self.task, self.token, self._lost or "lost")

    def _renewed(self, valid_until: float) -> None:
        self._valid_until = max(self._valid_until, valid_until)

    def _lose(self, reason: str) -> None:
        if self._lost is None:
            self._lost = reason


_current: contextvars.ContextVar[Lease | None] = contextvars.ContextVar(
    "tickwork_lease", default=None
)


def current_lease() -> Lease | None:
    """The lease of the coordinated run this code runs in, or None.

    None outside a run, in an uncoordinated run and in a ``singleton=False`` task. Plain
    functions running in tickwork's worker threads see the lease of their run too.
    """
    return _current.get()

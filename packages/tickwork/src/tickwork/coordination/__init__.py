"""Many replicas, one schedule: the coordination protocol and its in-process implementation.

``Scheduler(coordinator=...)`` runs each singleton task once per interval across every replica
sharing the coordinator's store, measures due times on the store's clock, and hands each run a
lease with a fencing token (``tickwork.current_lease()``). Backends, each behind its extra and
imported by path: :mod:`tickwork.coordination.postgres` (``tickwork[postgres]``). This module
imports the standard library only.
"""

from tickwork.coordination._memory import InProcessCoordinator, MemoryStore
from tickwork.coordination._protocol import (
    Busy,
    ClusterView,
    Control,
    Coordinator,
    CoordinatorError,
    Grant,
    PeerView,
    TaskDecl,
    TaskView,
)
from tickwork.coordination._url import from_url

__all__ = [
    "Busy",
    "ClusterView",
    "Control",
    "Coordinator",
    "CoordinatorError",
    "Grant",
    "InProcessCoordinator",
    "MemoryStore",
    "PeerView",
    "TaskDecl",
    "TaskView",
    "from_url",
]

"""The public API is pinned: a change to it is a deliberate, reviewed change."""

import tickwork
import tickwork.service
import tickwork.testing


def test_tickwork_all_is_pinned() -> None:
    """tickwork exports exactly the documented names."""
    assert tickwork.__all__ == [
        "CronSpec",
        "ErrorCode",
        "Execution",
        "ExecutionHook",
        "ExecutionResult",
        "Lease",
        "LeaseLostError",
        "Outcome",
        "Scheduler",
        "SchedulerError",
        "ShutdownReport",
        "Snooze",
        "TaskSpec",
        "TaskState",
        "TaskStatus",
        "__version__",
        "bind",
        "current_lease",
    ]
    for name in tickwork.__all__:
        assert hasattr(tickwork, name), name


def test_testing_all_is_pinned() -> None:
    """tickwork.testing exports exactly the documented helpers."""
    assert tickwork.testing.__all__ == [
        "SimulatedCluster",
        "VirtualTimeLoop",
        "run",
        "wait_for_runs",
        "wait_until",
    ]


def test_coordination_all_is_pinned() -> None:
    """tickwork.coordination exports exactly the protocol, its types and the in-process store."""
    import tickwork.coordination

    assert tickwork.coordination.__all__ == [
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


def test_service_all_is_pinned() -> None:
    """tickwork.service exports exactly the documented names."""
    assert tickwork.service.__all__ == [
        "ComponentCheck",
        "ComponentState",
        "ComponentStatus",
        "SchedulerMetrics",
        "TracingHook",
        "create_app",
        "register_component",
        "register_routes",
        "tracing_hook",
    ]
    for name in tickwork.service.__all__:
        assert hasattr(tickwork.service, name), name


def test_versions_are_single_sourced() -> None:
    """Each distribution's version is its `_version.py`, the one its build backend reads."""
    from importlib.metadata import version

    import miauflix

    assert tickwork.__version__ == version("tickwork")
    assert miauflix.__version__ == version("miauflix")

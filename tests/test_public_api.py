"""The public API is pinned: a change to it is a deliberate, reviewed change."""

import tickwork
import tickwork.testing


def test_tickwork_all_is_pinned() -> None:
    """tickwork exports exactly the documented names."""
    assert tickwork.__all__ == [
        "ErrorCode",
        "Execution",
        "ExecutionHook",
        "ExecutionResult",
        "Outcome",
        "Scheduler",
        "SchedulerError",
        "ShutdownReport",
        "TaskSpec",
        "TaskState",
        "TaskStatus",
        "__version__",
        "bind",
    ]
    for name in tickwork.__all__:
        assert hasattr(tickwork, name), name


def test_testing_all_is_pinned() -> None:
    """tickwork.testing exports exactly the documented helpers."""
    assert tickwork.testing.__all__ == [
        "VirtualTimeLoop",
        "VirtualTimePolicy",
        "run",
        "wait_for_runs",
        "wait_until",
    ]


def test_version_comes_from_package_metadata() -> None:
    """__version__ is the installed distribution's version."""
    from importlib.metadata import version

    assert tickwork.__version__ == version("tickwork")

"""Optional parts of tickwork and the extras that install them.

The core imports the standard library only. A module that needs an extra (``tickwork.service``,
and later the coordination backends and calendar schedules) calls :func:`require_extra` first,
so a missing extra is one :class:`MissingExtraError` naming what to install, never an
``ImportError`` from deep inside a third-party import.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable

__all__ = ["MissingExtraError", "require_extra"]


class MissingExtraError(ModuleNotFoundError):
    """A module of tickwork needs an extra that is not installed.

    The message is one line that names the extra and the command installing it.
    """

    def __init__(self, feature: str, extra: str, missing: str) -> None:
        self.extra = extra
        super().__init__(
            f"{feature} needs the [{extra}] extra ({missing} is not installed): "
            f"pip install 'tickwork[{extra}]'",
            name=missing,
        )


def require_extra(feature: str, extra: str, modules: Iterable[str]) -> None:
    """Raise :class:`MissingExtraError` unless every module of ``modules`` can be imported.

    Args:
        feature: What needs the extra, as the user knows it (``"tickwork.service"``).
        extra: The extra's name in ``pyproject.toml`` (``"service"``).
        modules: The top-level modules the extra installs.
    """
    for module in modules:
        if importlib.util.find_spec(module) is None:
            raise MissingExtraError(feature, extra, module)

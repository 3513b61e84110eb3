"""Resolve ``MODULE:CALLABLE`` (as given to ``tickwork run``) to a callable.

``MODULE`` is a dotted module path, imported with the current directory first on
``sys.path`` (like ``uvicorn`` and ``python -m``); ``CALLABLE`` is an attribute path in it
(``app:setup`` or ``app:Service.setup``). Every failure raises :class:`LoadError` with one
line that names what was not found.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from typing import Any

__all__ = ["LoadError", "load_target"]


class LoadError(Exception):
    """``MODULE:CALLABLE`` could not be resolved; the message is one line for the user."""


def load_target(spec: str) -> Callable[..., Any]:
    """Import ``MODULE`` and return its ``CALLABLE`` attribute.

    Args:
        spec: ``"package.module:attribute"`` (the attribute may be dotted).

    Returns:
        The callable.

    Raises:
        LoadError: Malformed spec, unknown module or attribute, an error while importing the
            module, or an attribute that is not callable.
    """
    module_name, sep, attr_path = spec.partition(":")
    if not sep or not module_name or not attr_path:
        raise LoadError(f"expected MODULE:CALLABLE (for example myapp:setup), got {spec!r}")
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        # Only "the module itself is missing" is the user's typo; a missing import inside an
        # existing module is that module's error and is reported as such below.
        if exc.name is not None and (
            module_name == exc.name or module_name.startswith(exc.name + ".")
        ):
            raise LoadError(
                f"cannot import module {module_name!r}: no module named {exc.name!r}"
            ) from None
        raise LoadError(
            f"error while importing module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    except Exception as exc:
        raise LoadError(
            f"error while importing module {module_name!r}: {type(exc).__name__}: {exc}"
        ) from exc
    target: Any = module
    for part in attr_path.split("."):
        try:
            target = getattr(target, part)
        except AttributeError:
            raise LoadError(f"module {module_name!r} has no attribute {attr_path!r}") from None
    if not callable(target):
        raise LoadError(f"{spec!r} is not callable (its type is {type(target).__name__})")
    return target  # type: ignore[no-any-return]

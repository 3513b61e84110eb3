"""Miauflix: the reference application of tickwork.

``tickwork run miauflix.app:setup`` runs the background-task service of the Miauflix media
backend; see :mod:`miauflix.app`.
"""

from miauflix._version import __version__

__all__ = ["__version__"]

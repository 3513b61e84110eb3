"""The version of the `miauflix` distribution: its single source (read by the build backend)."""

__version__ = "0.2.0"

"""The version of the `tickwork` distribution: its single source (read by the build backend)."""

__version__ = "0.2.0"

"""Runs one scenario for one implementation in this (fresh) process; prints one JSON line.

Usage: ``python -m benchmarks._worker '{"scenario": ..., "impl": ..., "params": {...}}'``.
Called by :mod:`benchmarks.core`; not meant to be run by hand, though it can be.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from typing import Any

from benchmarks._scenarios import SCENARIOS


async def _run(spec: dict[str, Any]) -> None:
    figures = await SCENARIOS[spec["scenario"]](spec["impl"], spec["params"])
    sys.stdout.write(json.dumps(figures) + "\n")
    sys.stdout.flush()
    # Tearing down 100,000 tasks takes longer than the measurement; nothing is left to flush.
    os._exit(0)


def main(argv: list[str]) -> None:
    """Run the scenario described by the JSON in ``argv[1]``."""
    asyncio.run(_run(json.loads(argv[1])))


if __name__ == "__main__":
    main(sys.argv)

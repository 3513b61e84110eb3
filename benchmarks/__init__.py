"""Reproducible measurements of tickwork against a bare asyncio loop and APScheduler 3.11.

Run ``python -m benchmarks.core`` (or ``make bench``); see ``docs/benchmarks.md`` for the method
and the latest figures. Every figure is a ratio to the bare loop measured in the same run, each
implementation in a fresh process, interleaved over several repeats, because the machines we
share are noisy.
"""

"""The README's examples run as printed (the library example: in tests/packaging)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from miauflix.settings import RATE_DEFAULTS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_virtual_time_example_runs() -> None:
    """The README's tickwork.testing example runs instantly and its assertion holds."""
    block = _block("wait_for_runs")
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})


def _block(containing: str) -> str:
    """The README's one ``python`` block that contains ``containing``."""
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    (block,) = [b for b in blocks if containing in b]
    return block


def test_readme_calendar_example_runs_on_virtual_time(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's schedule_cron example runs (a virtual day) and reports both tasks."""
    block = _block("schedule_cron").replace("asyncio.run(main())", "tickwork.testing.run(main())")
    exec(compile("import tickwork.testing\n" + block, "README.md", "exec"), {"__name__": "x"})
    lines = capsys.readouterr().out.splitlines()
    assert lines.count("nightly report") == 96  # 00:15 to 23:45, and 03:00 in Rome
    assert lines[-2:] == [
        "nightly-report {'kind': 'cron', 'expression': '0 3 * * *', 'tz': 'Europe/Rome'} 1 0",
        "poll {'kind': 'cron', 'expression': '*/15 * * * *', 'tz': 'UTC'} 95 0",
    ]


def test_readme_settings_table_lists_every_provider_limit_with_its_default() -> None:
    """Each provider-limit variable has a row in the README's settings table with its default."""
    rows = {
        cells[0].strip("` "): cells[1].strip("` ")
        for line in README.read_text().splitlines()
        if line.startswith("| `")
        for cells in [line.strip("|").split("|")]
    }
    for name, default in RATE_DEFAULTS.items():
        assert rows.get(name) == default, name

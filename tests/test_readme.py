"""The README's examples run as printed (the library example: in tests/packaging)."""

from __future__ import annotations

import re
from pathlib import Path

from miauflix.settings import RATE_DEFAULTS

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_virtual_time_example_runs() -> None:
    """The README's tickwork.testing example runs instantly and its assertion holds."""
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    assert "wait_for_runs" in block
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})


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

"""The README's examples run as printed (the library example: in tests/packaging)."""

from __future__ import annotations

import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_readme_virtual_time_example_runs() -> None:
    """The README's tickwork.testing example runs instantly and its assertion holds."""
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    assert "wait_for_runs" in block
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})

"""The README's library example runs as printed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.slow
def test_readme_library_example_runs(tmp_path: Path) -> None:
    """The first Python block of the README runs and prints each task's status."""
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[0]
    script = tmp_path / "example.py"
    script.write_text(block)
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "refreshing 6 pages"
    assert any(line.startswith("refresh scheduled ") for line in lines)
    assert any(line.startswith("vacuum scheduled ") for line in lines)


def test_readme_virtual_time_example_runs() -> None:
    """The README's tickwork.testing example runs instantly and its assertion holds."""
    block = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)[1]
    assert "wait_for_runs" in block
    exec(compile(block, "README.md", "exec"), {"__name__": "readme_example"})

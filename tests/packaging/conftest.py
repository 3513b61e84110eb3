"""Fixtures for the packaging tests: both distributions built once, and fresh venvs to install them.

The distributions are built from a copy of their folders (no build artefacts, no editable
metadata), sdist first and the wheel from the sdist, as a release would. Fresh venvs are made
without pip and filled by the development venv's pip (``pip --python``), offline: the built
wheels plus the wheelhouse that ``make venv`` fills with the third-party dependencies. Each
venv is made once per session and shared by the tests that use it.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
WHEELHOUSE = Path(sys.prefix) / "wheelhouse"


@dataclass(frozen=True)
class Built:
    """The sdist and the wheel of one distribution, and the folder holding both."""

    sdist: Path
    wheel: Path
    folder: Path


@dataclass(frozen=True)
class Venv:
    """A fresh virtual environment: its folder, its ``bin`` and its interpreter."""

    root: Path

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def python(self) -> str:
        return str(self.bin / "python")

    def run(self, *args: str, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run ``args`` (the first relative to ``bin``) in ``cwd``; capture text output."""
        return subprocess.run(
            [str(self.bin / args[0]), *args[1:]],
            cwd=cwd,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    def distributions(self) -> list[str]:
        """The names of every distribution installed in this venv, sorted."""
        code = (
            "import importlib.metadata as m;"
            "print('\\n'.join(sorted(d.metadata['Name'] for d in m.distributions())))"
        )
        result = self.run("python", "-c", code, cwd=self.root)
        assert result.returncode == 0, result.stderr
        return result.stdout.split()


def _run(args: list[str], timeout: float = 180.0) -> None:
    result = subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False)
    assert result.returncode == 0, f"{' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"


@pytest.fixture(scope="session")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Built]:
    """Both distributions, built offline from clean copies of their folders."""
    root = tmp_path_factory.mktemp("dist")
    found: dict[str, Built] = {}
    for name in ("tickwork", "miauflix"):
        source = root / "src" / name
        shutil.copytree(
            REPO / "packages" / name,
            source,
            ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build", "dist"),
        )
        out = root / name
        _run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)])
        (sdist,) = out.glob("*.tar.gz")
        (wheel,) = out.glob("*.whl")
        found[name] = Built(sdist=sdist, wheel=wheel, folder=out)
    return found


def make_venv(root: Path, *requirements: str, find_links: list[Path]) -> Venv:
    """A new venv at ``root`` with ``requirements`` installed offline from ``find_links``."""
    _run([sys.executable, "-m", "venv", "--without-pip", str(root)], timeout=60)
    venv = Venv(root)
    if not WHEELHOUSE.is_dir():
        pytest.fail(f"no wheelhouse at {WHEELHOUSE}: rebuild the venv with `make venv`")
    links = [arg for folder in [*find_links, WHEELHOUSE] for arg in ("--find-links", str(folder))]
    _run(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            venv.python,
            "install",
            "--quiet",
            "--no-index",
            "--no-cache-dir",
            *links,
            *requirements,
        ]
    )
    return venv


@pytest.fixture(scope="session")
def core_venv(built: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv with the ``tickwork`` wheel alone."""
    return make_venv(
        tmp_path_factory.mktemp("core-venv"),
        str(built["tickwork"].wheel),
        find_links=[],
    )


@pytest.fixture(scope="session")
def service_venv(built: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv with ``tickwork[service]`` from the wheel."""
    return make_venv(
        tmp_path_factory.mktemp("service-venv"),
        f"tickwork[service] @ {built['tickwork'].wheel.as_uri()}",
        find_links=[],
    )


@pytest.fixture(scope="session")
def miauflix_venv(built: dict[str, Built], tmp_path_factory: pytest.TempPathFactory) -> Venv:
    """A venv with the ``miauflix`` wheel, its ``tickwork`` taken from the local build."""
    return make_venv(
        tmp_path_factory.mktemp("miauflix-venv"),
        str(built["miauflix"].wheel),
        find_links=[built["tickwork"].folder],
    )

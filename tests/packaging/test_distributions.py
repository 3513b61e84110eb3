"""Both distributions build from a clean copy, and their metadata says what they are."""

from __future__ import annotations

import re
import tarfile
import zipfile
from email.message import Message
from email.parser import Parser

import pytest

from .conftest import REPO, Built

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


def _version(name: str) -> str:
    scope: dict[str, str] = {}
    source = REPO / "packages" / name / "src" / name / "_version.py"
    exec(source.read_text(), scope)
    return scope["__version__"]


def _metadata(built: Built) -> Message:
    with zipfile.ZipFile(built.wheel) as wheel:
        (path,) = [n for n in wheel.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(wheel.read(path).decode())


def _wheel_files(built: Built) -> list[str]:
    with zipfile.ZipFile(built.wheel) as wheel:
        return wheel.namelist()


def _sdist_files(built: Built) -> list[str]:
    with tarfile.open(built.sdist) as sdist:
        return [member.name.split("/", 1)[1] for member in sdist.getmembers() if "/" in member.name]


def test_tickwork_wheel_declares_no_dependency(built: dict[str, Built]) -> None:
    """The tickwork wheel requires nothing unless an extra is asked for, and names every extra."""
    meta = _metadata(built["tickwork"])
    assert meta["Name"] == "tickwork"
    assert meta["Version"] == _version("tickwork")
    assert meta["Requires-Python"] == ">=3.11"
    assert meta["License-Expression"] == "MIT"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Summary"]
    assert "text/markdown" in meta["Description-Content-Type"]
    requirements = meta.get_all("Requires-Dist") or []
    assert requirements, "the extras' requirements are missing"
    assert all("extra ==" in r for r in requirements), requirements
    assert set(meta.get_all("Provides-Extra") or []) == {
        "service",
        "otel",
        "postgres",
        "redis",
        "cron",
    }
    service = {
        re.split(r"[<>=!~;\s]", r, maxsplit=1)[0]: r
        for r in requirements
        if "extra == 'service'" in r
    }
    assert sorted(service) == ["click", "httpx", "prometheus-client", "starlette", "uvicorn"]
    # tickwork.service._connections subclasses uvicorn's protocol: its range stays pinned.
    assert "<" in service["uvicorn"], service["uvicorn"]
    cron = [
        re.split(r"[<>=!~;\s]", r, maxsplit=1)[0] for r in requirements if "extra == 'cron'" in r
    ]
    assert sorted(cron) == ["cronsim", "tzdata"]  # calendar schedules (Scheduler.schedule_cron)


def test_tickwork_wheel_holds_the_core_and_service_only(built: dict[str, Built]) -> None:
    """The tickwork wheel ships tickwork (typed, with the page's files) and nothing of miauflix."""
    files = _wheel_files(built["tickwork"])
    packages = {f.split("/")[0] for f in files if not f.split("/")[0].endswith(".dist-info")}
    assert packages == {"tickwork"}
    assert "tickwork/py.typed" in files
    assert "tickwork/service/static/status.js" in files
    entry_points = next(f for f in files if f.endswith("entry_points.txt"))
    with zipfile.ZipFile(built["tickwork"].wheel) as wheel:
        assert "tickwork = tickwork.__main__:main" in wheel.read(entry_points).decode()


def test_miauflix_wheel_depends_on_the_service_extra(built: dict[str, Built]) -> None:
    """miauflix requires tickwork[service] and its libraries; PostgreSQL is its own extra."""
    meta = _metadata(built["miauflix"])
    assert meta["Name"] == "miauflix"
    assert meta["Version"] == _version("miauflix")
    assert meta["License-Expression"] == "MIT"
    requirements = meta.get_all("Requires-Dist") or []
    assert "tickwork[service]>=0.2.0" in requirements
    assert "asyncpg>=0.29; extra == 'postgres'" in requirements
    assert meta.get_all("Provides-Extra") == ["postgres"]


def test_miauflix_wheel_holds_miauflix_only(built: dict[str, Built]) -> None:
    """The miauflix wheel ships its package, typed, with its migrations, and no test fixtures."""
    files = _wheel_files(built["miauflix"])
    packages = {f.split("/")[0] for f in files if not f.split("/")[0].endswith(".dist-info")}
    assert packages == {"miauflix"}
    assert "miauflix/py.typed" in files
    assert any(f.startswith("miauflix/db/migrations/versions/0001_") for f in files)
    assert not [f for f in files if "/tests/" in f or "conftest" in f or "testing" in f]


@pytest.mark.parametrize("name", ["tickwork", "miauflix"])
def test_sdist_is_complete(built: dict[str, Built], name: str) -> None:
    """Each sdist holds its pyproject, README, LICENSE and sources, and nothing else of ours."""
    files = _sdist_files(built[name])
    for required in ("pyproject.toml", "README.md", "LICENSE", "PKG-INFO"):
        assert required in files, required
    assert f"src/{name}/__init__.py" in files
    other = "miauflix" if name == "tickwork" else "tickwork"
    assert not [f for f in files if f.startswith(("tests/", f"src/{other}/"))]

"""pyproject.toml declares what requirements.txt pins (one fact, two formats): they must agree."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
#: Test tools: pinned in requirements.txt (make setup installs them), declared in the ``dev`` extra.
DEV_TOOLS = {"pytest", "nbmake", "pytest-xdist", "pytest-rerunfailures", "ruff"}
#: Pinned exactly in pyproject too (the course's figures were measured with this build).
EXACT = {"torch"}


def pins(path: Path) -> dict[str, str]:
    """``{package: version}`` of a requirements file of ``name==version`` lines (comments and blanks skipped)."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            match = re.fullmatch(r"([A-Za-z0-9_.-]+)==([^\s;]+)", line)
            assert match, f"{path.name}: {line!r} is not pinned as name==version"
            found[canonicalize_name(match[1])] = match[2]
    return found


def declared(requirements: list[str]) -> dict[str, Requirement]:
    return {canonicalize_name(r.name): r for r in map(Requirement, requirements)}


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]


def test_pyproject_declares_every_pin_of_requirements_txt_as_its_compatible_range(project):
    pinned = pins(ROOT / "requirements.txt")
    runtime = declared(project["dependencies"])
    dev = declared(project["optional-dependencies"]["dev"])
    assert set(dev) == DEV_TOOLS and not set(runtime) & DEV_TOOLS
    assert set(runtime) | set(dev) == set(pinned), "pyproject.toml and requirements.txt list other packages"
    for name, requirement in {**runtime, **dev}.items():
        expected = f"=={pinned[name]}" if name in EXACT else f"~={pinned[name]}"
        assert str(requirement.specifier) == expected, (
            f"pyproject.toml declares {requirement}, requirements.txt pins {name}=={pinned[name]}: "
            f"declare {requirement.name}{expected}")


def test_the_console_scripts_name_the_runners_main_functions(project):
    assert set(project["scripts"]) == {"flan-course", "flan-course-train"}
    for target in project["scripts"].values():
        module, function = target.split(":")
        assert callable(getattr(importlib.import_module(module), function)), target


def test_the_readme_is_the_projects_long_description(project):
    assert (ROOT / project["readme"]).is_file()

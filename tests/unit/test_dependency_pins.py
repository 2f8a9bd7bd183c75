"""Dependencies: version ranges in pyproject.toml, the exact versions in constraints.txt."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _normalised(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    extras = [dep for group in project["optional-dependencies"].values() for dep in group]
    return [*project["dependencies"], *extras]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "constraints.txt").read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[_normalised(name)] = version
    return pins


def test_pyproject_declares_ranges_not_pins() -> None:
    """Every dependency in pyproject.toml is a range with an upper bound, so an installed
    nexusmail can share a venv with other packages and still not jump a major version."""
    for dep in _declared():
        assert "==" not in dep, f"{dep}: exact pins belong in constraints.txt"
        assert ">=" in dep, f"{dep}: needs a lower bound"
        assert "<" in dep, f"{dep}: needs an upper bound"


def test_constraints_pin_every_declared_dependency_inside_its_range() -> None:
    """constraints.txt pins each declared dependency exactly, to a version its range
    allows: what the tests ran with is what `make install` installs."""
    from packaging.requirements import Requirement

    pins = _pins()
    for dep in _declared():
        requirement = Requirement(dep)
        name = _normalised(requirement.name)
        assert name in pins, f"{requirement.name} has no exact pin in constraints.txt"
        assert requirement.specifier.contains(pins[name]), (
            f"{requirement.name}=={pins[name]} is outside {requirement.specifier}")


def test_no_lock_file_with_index_addresses() -> None:
    """No lock file that records package-index addresses is committed (ranges and pins
    in text files are the project's rule)."""
    assert not list(ROOT.glob("*.lock"))

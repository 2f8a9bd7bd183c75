"""The wheel carries what the daemon reads at run time: migrations and templates."""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_contains_migrations_and_templates(tmp_path: Path) -> None:
    """A built wheel has every SQL migration and every mail/admin template of the tree,
    so an installed (non-editable) daemon finds them."""
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
         "-w", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [wheel] = tmp_path.glob("nexusmail-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    package = ROOT / "nexusmail"
    wanted = [p for p in package.rglob("*") if p.is_file() and p.suffix in {".sql", ".j2", ".css"}]
    assert wanted, "nothing to look for"
    missing = [str(p.relative_to(ROOT)) for p in wanted
               if str(p.relative_to(ROOT)) not in names]
    assert missing == []


def test_sdist_ships_license_config_and_systemd_files(tmp_path: Path) -> None:
    """The source distribution carries the licence, the example config and the systemd
    files the README installs from, and declares its licence in the metadata."""
    subprocess.run(
        [sys.executable, "-m", "build", "--sdist", "-o", str(tmp_path), str(ROOT)],
        check=True, capture_output=True, timeout=300,
    )
    [sdist] = tmp_path.glob("nexusmail-*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {name.partition("/")[2] for name in archive.getnames()}
        [pkg_info] = [m for m in archive.getmembers() if m.name.count("/") == 1
                      and m.name.endswith("/PKG-INFO")]
        metadata = archive.extractfile(pkg_info).read().decode()  # type: ignore[union-attr]
    wanted = {"LICENSE", "config/nexusmail.example.toml", "systemd/nexusmail.service",
              "systemd/nexusmail.sysusers"}
    assert wanted <= names
    assert "License-Expression: Apache-2.0" in metadata

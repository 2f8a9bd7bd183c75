"""The wheel carries what the daemon reads at run time: migrations and templates."""

from __future__ import annotations

import subprocess
import sys
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

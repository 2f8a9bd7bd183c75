"""Comments and docs say what they mean instead of citing documents that are not in the repo."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("nexusmail", "tests", "bench", "docs", "README.md", "Makefile")
SUFFIXES = {".py", ".md", ".sql", ".toml", ".txt", ".html", ".j2", ""}
# A tracker's numbers and a design document's numbered rules mean nothing to a reader of
# the repository alone. Built from pieces so this file does not match itself.
CITATION = re.compile("|".join((
    r"\b[Ii]ssue \d", r"\b[Pp]oint \d", r"\b[Ii]nvariants? \d",
    r"\b" + "DES" + r"IGN\b", "DOM" + r"AIN\.md", "STY" + r"LE\.md", r"\b" + "STY" + "LE:",
)))


def checked_files() -> list[Path]:
    """Every text file under the checked paths, this repository's own only."""
    files: list[Path] = []
    for name in CHECKED:
        path = ROOT / name
        candidates = [path] if path.is_file() else sorted(path.rglob("*"))
        files.extend(p for p in candidates
                     if p.is_file() and p.suffix in SUFFIXES and "__pycache__" not in p.parts)
    return files


def test_no_comment_or_doc_cites_an_outside_document() -> None:
    """No line cites an issue number, a numbered point or invariant, or the team's documents."""
    found = [f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
             for path in checked_files()
             for number, line in enumerate(path.read_text("utf-8", "replace").splitlines(), 1)
             if CITATION.search(line)]
    assert found == [], "say what is meant instead of citing it:\n" + "\n".join(found)


def test_the_check_catches_a_citation() -> None:
    """The pattern finds each kind of citation it is meant to refuse."""
    samples = ("see is" + "sue 4", "(is" + "sue 2, po" + "int 7)", "inva" + "riant 3",
               "DES" + "IGN.md", "(STY" + "LE: no globals)")
    for text in samples:
        assert CITATION.search(text), text
    assert not CITATION.search("the design of the outbox")


def test_markdown_links_stay_inside_the_repository() -> None:
    """Every relative link of the repo's markdown files names a file that exists in it."""
    broken: list[str] = []
    for path in checked_files():
        if path.suffix != ".md":
            continue
        for target in re.findall(r"\]\(([^)#\s]+)", path.read_text("utf-8")):
            if target.startswith(("http://", "https://", "mailto:")):
                continue
            resolved = (path.parent / target).resolve()
            if not resolved.is_relative_to(ROOT) or not resolved.exists():
                broken.append(f"{path.relative_to(ROOT)}: {target}")
    assert broken == []

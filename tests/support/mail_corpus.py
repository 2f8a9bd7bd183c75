"""The fixture mail corpus (tests/fixtures/mail): files, bytes and expectations.

Used by the parse unit tests, the ingest integration tests and the benchmarks, so they
all read the same realistic mails.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parents[1] / "fixtures" / "mail"


def corpus_files() -> list[Path]:
    """Every .eml of the corpus, in file-name order."""
    return sorted(CORPUS_DIR.glob("*.eml"))


def load(name: str) -> bytes:
    """The raw bytes of one corpus mail: a file name, or its unique prefix ("07")."""
    path = CORPUS_DIR / name
    if not path.is_file():
        matches = [p for p in corpus_files() if p.name.startswith(name)]
        if len(matches) != 1:
            raise FileNotFoundError(f"no single corpus mail named {name!r} in {CORPUS_DIR}")
        path = matches[0]
    return path.read_bytes()


def _cases_module() -> ModuleType:
    name = "nexusmail_mail_cases"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, CORPUS_DIR / "cases.py")
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while building
        spec.loader.exec_module(module)
    return sys.modules[name]


def cases() -> list[Any]:
    """The expectation rows (cases.MailCase) for the corpus files."""
    return list(_cases_module().CASES)


def own_domains() -> tuple[str, ...]:
    """The domains the corpus treats as ours (for noise: our own mail coming back)."""
    return tuple(_cases_module().OWN_DOMAINS)

"""The package import rules: the domain and the mail model never know the transports or the web."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import nexusmail

PACKAGE_ROOT = Path(nexusmail.__file__).parent

# Each rule: (the package whose modules are checked, the packages they must not import).
# tickets, records (the customer archive beside it) and mail are the core that ingest,
# dispatch and admin are built on: an import the other way makes a cycle and lets the domain
# depend on a transport. mail is the pure parsed-mail
# model, so it also knows nothing of the store or the tickets. The CLI is the outermost layer:
# only the entry point may import it.
RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("nexusmail.tickets", ("nexusmail.ingest", "nexusmail.admin", "nexusmail.dispatch")),
    ("nexusmail.records", ("nexusmail.ingest", "nexusmail.admin", "nexusmail.dispatch")),
    (
        "nexusmail.mail",
        (
            "nexusmail.ingest",
            "nexusmail.admin",
            "nexusmail.dispatch",
            "nexusmail.tickets",
            "nexusmail.service",
            "nexusmail.daemon",
        ),
    ),
    # The blob stores keep bytes by their hash: below the domain, knowing none of it.
    (
        "nexusmail.blobs",
        (
            "nexusmail.tickets",
            "nexusmail.records",
            "nexusmail.ingest",
            "nexusmail.admin",
            "nexusmail.dispatch",
            "nexusmail.service",
            "nexusmail.daemon",
        ),
    ),
    ("nexusmail.dispatch", ("nexusmail.admin",)),
    ("nexusmail.ingest", ("nexusmail.admin",)),
    ("nexusmail", ("nexusmail.cli",)),
)

# Modules allowed to import the CLI: the CLI itself and the `python -m nexusmail` entry point.
CLI_IMPORTERS = ("nexusmail.cli", "nexusmail.__main__")


def module_name(path: Path) -> str:
    """The dotted module name of a file under the package root."""
    parts = path.relative_to(PACKAGE_ROOT.parent).with_suffix("").parts
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every absolute module a file imports, also inside functions, with its line."""
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            found.append((node.lineno, node.module))
            # "from nexusmail import cli" names a submodule in the imported names.
            found.extend((node.lineno, f"{node.module}.{alias.name}") for alias in node.names)
    return found


def within(name: str, package: str) -> bool:
    """True when the module `name` is `package` or inside it."""
    return name == package or name.startswith(package + ".")


def violations(package: str, forbidden: tuple[str, ...]) -> list[str]:
    """The imports of `package`'s modules that break its rule, as "module:line imports name"."""
    broken: list[str] = []
    for path in sorted(PACKAGE_ROOT.rglob("*.py")):
        importer = module_name(path)
        if not within(importer, package):
            continue
        for line, imported in imported_modules(path):
            for banned in forbidden:
                if not within(imported, banned):
                    continue
                if banned == "nexusmail.cli" and any(within(importer, ok) for ok in CLI_IMPORTERS):
                    continue
                broken.append(f"{importer}:{line} imports {imported}")
    return broken


@pytest.mark.parametrize(("package", "forbidden"), RULES, ids=[rule[0] for rule in RULES])
def test_package_keeps_its_import_rule(package: str, forbidden: tuple[str, ...]) -> None:
    """No module of the package imports a package its layer must not know."""
    assert violations(package, forbidden) == []


def test_rules_see_imports_inside_functions(tmp_path: Path) -> None:
    """A deferred import inside a function body is found like a top-level one."""
    source = tmp_path / "deferred.py"
    source.write_text("def f():\n    from nexusmail.admin import auth\n", encoding="utf-8")
    assert (2, "nexusmail.admin.auth") in imported_modules(source)


def test_the_parse_worker_imports_no_logging_or_event_loop() -> None:
    """What a parse worker process loads to parse a mail: no structlog (and with it
    asyncio, ssl, greenlet...), no web stack, no store. Each worker pays every such
    import in memory and start-up time, once per worker and per replacement."""
    loaded = subprocess.run(
        [sys.executable, "-c", "import sys, nexusmail.ingest.prepare;"
         " print(' '.join(sorted(m.split('.')[0] for m in sys.modules)))"],
        capture_output=True, text=True, check=True).stdout.split()
    heavy = {"structlog", "asyncio", "ssl", "starlette", "jinja2", "pydantic", "sqlite3",
             "psycopg", "aiosqlite"}
    assert heavy.isdisjoint(loaded), sorted(heavy & set(loaded))

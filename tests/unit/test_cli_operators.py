"""`nexusmail operator add|password|list` against a real store in a temp dir."""

from __future__ import annotations

import asyncio
import io
import subprocess
import sys
from pathlib import Path

import pytest

from nexusmail.cli.main import main
from nexusmail.clock import SystemClock
from nexusmail.config import load_settings
from nexusmail.paths import database_path
from nexusmail.tickets.operator_sessions import open_session
from nexusmail.tickets.operators import find_operator, verify_password
from nexusmail.tickets.store import Store


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n',
                    encoding="utf-8")
    return path


def run(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], stdin: str,
        *argv: str) -> tuple[int, str, str]:
    monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def password_works(config: Path, email: str, password: str) -> bool:
    async def check() -> bool:
        async with Store(database_path(load_settings(config))) as store, store.read() as conn:
            return verify_password(await find_operator(conn, email), password)

    return asyncio.run(check())


def test_operator_add_reads_the_password_from_a_pipe(config: Path) -> None:
    """The real command, password piped in: the operator can log in with it."""
    done = subprocess.run(
        [sys.executable, "-m", "nexusmail", "--config", str(config), "operator", "add",
         "Anna@Firm.test", "--name", "Anna Conti"],
        input="una password lunga\n", capture_output=True, text=True, timeout=30, check=False)
    assert done.returncode == 0, done.stderr
    assert "Added operator 1: anna@firm.test" in done.stdout
    assert "una password" not in done.stdout + done.stderr
    assert password_works(config, "anna@firm.test", "una password lunga")


def test_operator_add_twice_and_short_passwords_are_refused(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A second add of the address fails (1); a short password is a usage error (2)."""
    cfg = str(config)
    assert run(monkeypatch, capsys, "corta\n", "operator", "add", "a@firm.test",
               "--config", cfg)[0] == 2
    assert run(monkeypatch, capsys, "abbastanza lunga\n", "operator", "add", "a@firm.test",
               "--config", cfg)[0] == 0
    code, _, err = run(monkeypatch, capsys, "abbastanza lunga\n", "operator", "add",
                       "a@firm.test", "--config", cfg)
    assert code == 1
    assert "operator password a@firm.test" in err


def test_operator_password_replaces_the_old_one(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """After `operator password` only the new password works; list shows the operator."""
    cfg = str(config)
    run(monkeypatch, capsys, "la vecchia password\n", "operator", "add", "a@firm.test",
        "--config", cfg)
    assert run(monkeypatch, capsys, "la nuova password\n", "operator", "password",
               "a@firm.test", "--config", cfg)[0] == 0
    assert password_works(config, "a@firm.test", "la nuova password")
    assert not password_works(config, "a@firm.test", "la vecchia password")
    assert run(monkeypatch, capsys, "la nuova password\n", "operator", "password",
               "b@firm.test", "--config", cfg)[0] == 1
    code, out, _ = run(monkeypatch, capsys, "", "operator", "list", "--config", cfg)
    assert code == 0
    assert "a@firm.test" in out
    assert "$argon2" not in out


def test_operator_disable_and_enable(
    config: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """`operator disable` stops the login and ends an open session at once; list says
    inactive; `operator enable` lets the same password in again; unknown address: 1."""
    cfg = str(config)
    run(monkeypatch, capsys, "una password lunga\n", "operator", "add", "a@firm.test",
        "--config", cfg)

    async def open_and_check(action: str) -> bool:
        async with Store(database_path(load_settings(config))) as store:
            if action == "open":
                await store.write(lambda tx: open_session(
                    tx, 1, now=SystemClock().now(), max_age_s=3600))
            async with store.read() as conn:
                rows = await conn.execute_fetchall("SELECT count(*) FROM operator_sessions")
                return bool(next(iter(rows))[0])

    assert asyncio.run(open_and_check("open"))
    code, out, _ = run(monkeypatch, capsys, "", "operator", "disable", "A@firm.test",
                       "--config", cfg)
    assert (code, out.strip()) == (0, "Operator a@firm.test disabled.")
    assert not password_works(config, "a@firm.test", "una password lunga")
    assert not asyncio.run(open_and_check("count"))
    assert "inactive" in run(monkeypatch, capsys, "", "operator", "list", "--config", cfg)[1]
    assert run(monkeypatch, capsys, "", "operator", "disable", "a@firm.test",
               "--config", cfg)[1].strip() == "Operator a@firm.test was disabled already."
    assert run(monkeypatch, capsys, "", "operator", "enable", "a@firm.test",
               "--config", cfg)[0] == 0
    assert password_works(config, "a@firm.test", "una password lunga")
    assert run(monkeypatch, capsys, "", "operator", "enable", "b@firm.test",
               "--config", cfg)[0] == 1

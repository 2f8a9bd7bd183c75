"""The `nexusmail` command: its offline subcommands against a real store in a temp dir."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from nexusmail.admin.tokens import token_is_valid
from nexusmail.cli import main
from nexusmail.config import load_settings
from nexusmail.paths import database_path
from nexusmail.tickets.store import Store


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # The CLI configures structlog for its process; give other tests theirs back, and
    # keep NEXUSMAIL_* variables of the environment out of these settings.
    for name in list(os.environ):
        if name.startswith("NEXUSMAIL_"):
            monkeypatch.delenv(name)
    saved = structlog.get_config()
    yield
    structlog.configure(**saved)


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "nexusmail.toml"
    path.write_text(
        f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n'
        '[outbound]\nhost = "relay.example.it"\nusername = "nm"\npassword = "s3cret-pw"\n',
        encoding="utf-8",
    )
    return path


def token_works(config: Path, token: str) -> bool:
    async def check() -> bool:
        async with Store(database_path(load_settings(config))) as store, store.read() as conn:
            return await token_is_valid(conn, token)

    return asyncio.run(check())


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_token_create_prints_a_usable_token_last(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`token create` prints the new token as the last line, and it is valid."""
    code, out, _ = run(capsys, "--config", str(config), "token", "create", "--name", "ci")
    assert code == 0
    token = out.strip().splitlines()[-1]
    assert len(token) >= 40
    assert token_works(config, token)
    assert not token_works(config, token + "x")


@pytest.mark.parametrize("argv", [
    ["--config", "{cfg}", "token", "create", "--name", "x"],
    ["token", "create", "--config", "{cfg}", "--name", "x"],
    ["token", "--config", "{cfg}", "create", "--name", "x"],
])
def test_config_is_taken_before_or_after_the_subcommand(
    config: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    """--config works at any level, and the store lands in that config's data dir."""
    code, out, _ = run(capsys, *[a.replace("{cfg}", str(config)) for a in argv])
    assert code == 0
    assert token_works(config, out.strip().splitlines()[-1])


def test_token_list_and_revoke(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A revoked token is listed as revoked, no longer works, and cannot be revoked twice."""
    _, out, _ = run(capsys, "token", "create", "--name", "dispatcher", "--config", str(config))
    token = out.strip().splitlines()[-1]
    assert run(capsys, "token", "revoke", "1", "--config", str(config))[0] == 0
    code, out, _ = run(capsys, "token", "list", "--config", str(config))
    assert code == 0
    assert "dispatcher" in out
    assert "revoked" in out
    assert token not in out
    assert not token_works(config, token)
    code, _, err = run(capsys, "token", "revoke", "1", "--config", str(config))
    assert code == 1
    assert "already revoked" in err


def test_employee_add_and_list(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`employee add` stores the employee; a duplicate fails with 1, a bad address with 2."""
    cfg = ["--config", str(config)]
    code, _, _ = run(capsys, *cfg, "employee", "add", "Ion.Popescu@Example.ro",
                     "--name", "Ion Popescu", "--language", "ro")
    assert code == 0
    code, out, _ = run(capsys, *cfg, "employee", "list")
    assert "ion.popescu@example.ro" in out
    assert "Ion Popescu" in out
    code, _, err = run(capsys, *cfg, "employee", "add", "ion.popescu@example.ro", "--name", "I")
    assert (code, "exists already" in err) == (1, True)
    code, _, err = run(capsys, *cfg, "employee", "add", "not-an-address", "--name", "X")
    assert code == 2
    assert "email" in err


def test_check_config_masks_secrets(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config prints the effective settings, never the password."""
    code, out, _ = run(capsys, "check-config", "--config", str(config))
    assert code == 0
    assert 'host = "relay.example.it"' in out
    assert "s3cret-pw" not in out
    assert 'password = "**********"' in out


def test_bad_config_exits_2_naming_the_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An invalid value exits 2 with the file and the key named, and no traceback."""
    bad = tmp_path / "bad.toml"
    bad.write_text('[smtp]\nport = "twenty-five"\n', encoding="utf-8")
    code, out, err = run(capsys, "check-config", "--config", str(bad))
    assert code == 2
    assert "[smtp] port" in err
    assert str(bad) in err
    assert "Traceback" not in err + out


def test_missing_config_file_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A config path that does not exist exits 2 and names it (run included)."""
    missing = tmp_path / "nope.toml"
    code, _, err = run(capsys, "run", "--config", str(missing))
    assert code == 2
    assert str(missing) in err


def test_version_needs_no_config(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`version` works even when the configuration named is broken."""
    code, out, _ = run(capsys, "version", "--config", str(tmp_path / "nope.toml"))
    assert code == 0
    assert out.startswith("nexusmail ")


@pytest.mark.parametrize("argv", [
    [], ["run"], ["token"], ["token", "create"], ["token", "list"], ["token", "revoke"],
    ["employee"], ["employee", "add"], ["employee", "list"], ["check-config"], ["version"],
])
def test_every_subcommand_has_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """--help on every (sub)command exits 0 and shows usage and examples."""
    code, out, _ = run(capsys, *argv, "--help")
    assert code == 0
    assert out.startswith("usage: nexusmail")
    assert "examples:" in out


@pytest.mark.parametrize("argv", [["token"], ["frobnicate"], ["token", "create"]])
def test_incomplete_commands_exit_2(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    """A group without its subcommand, an unknown command or a missing option exits 2."""
    code, _, err = run(capsys, *argv)
    assert code == 2
    assert "usage:" in err


def test_installed_entry_point_prints_the_token_last(config: Path) -> None:
    """`python -m nexusmail` in its own process: stdout's last line is the token, the
    store's log lines stay off stdout."""
    result = subprocess.run(
        [sys.executable, "-m", "nexusmail", "token", "create", "--name", "ops",
         "--config", str(config)],
        capture_output=True, text=True, timeout=30, check=False,
        env={k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")},
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert len(lines) == 2
    assert token_works(config, lines[-1])

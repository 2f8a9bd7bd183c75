"""The `nexusmail` command: its offline subcommands against a real store in a temp dir."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

import pytest

from nexusmail.admin.tokens import token_is_valid
from nexusmail.cli.language import local_minute
from nexusmail.cli.main import main
from nexusmail.clock import FakeClock
from nexusmail.config import load_settings
from nexusmail.paths import database_path
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.reply_tokens import load_reply_keys, verify_token
from nexusmail.tickets.store import Store

T = TypeVar("T")



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


def test_employee_disable_and_enable(config: Path, capsys: pytest.CaptureFixture[str]
                                     ) -> None:
    """`employee disable` retires an employee (list says inactive), `enable` brings them
    back; an unknown address fails with 1."""
    cfg = ["--config", str(config)]
    run(capsys, *cfg, "employee", "add", "luca@firm.test", "--name", "Luca", "--language", "it")
    assert run(capsys, *cfg, "employee", "disable", "Luca@firm.test")[:2] == (
        0, "Employee luca@firm.test disabled.\n")
    assert "inactive" in run(capsys, *cfg, "employee", "list")[1]
    assert run(capsys, *cfg, "employee", "enable", "luca@firm.test")[0] == 0
    assert "inactive" not in run(capsys, *cfg, "employee", "list")[1]
    code, _, err = run(capsys, *cfg, "employee", "disable", "nobody@firm.test")
    assert (code, "no employee" in err) == (1, True)


def test_check_config_masks_secrets(config: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """check-config prints the effective settings, never the password."""
    code, out, _ = run(capsys, "check-config", "--config", str(config))
    assert code == 0
    assert 'host = "relay.example.it"' in out
    assert "s3cret-pw" not in out
    assert 'password = "**********"' in out


def test_check_config_warns_about_lmtp_with_the_default_support_address(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Behind an MTA (LMTP) with the placeholder support address and no relay,
    check-config still succeeds but names both keys that would bounce or hold mail."""
    lmtp = tmp_path / "lmtp.toml"
    lmtp.write_text('[smtp]\nprotocol = "lmtp"\n', encoding="utf-8")
    code, _, err = run(capsys, "check-config", "--config", str(lmtp))
    assert code == 0
    assert "warning: [mail] support_addresses: still the default" in err
    assert "warning: [outbound] host: empty" in err
    lmtp.write_text('[smtp]\nprotocol = "lmtp"\n[mail]\nsupport_addresses = ["help@firm.it"]\n'
                    '[outbound]\nhost = "127.0.0.1"\n', encoding="utf-8")
    code, _, err = run(capsys, "check-config", "--config", str(lmtp))
    assert (code, err) == (0, "")


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
    ["assign"], ["intervention"], ["intervention", "show"],
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


def store_call(config: Path, fn: Callable[[sqlite3.Connection], T]) -> T:
    """Run `fn` in a write transaction of the store `config` names (for setup and checks)."""
    async def call() -> T:
        async with Store(database_path(load_settings(config))) as store:
            return await store.write(fn)

    return asyncio.run(call())


def open_case(config: Path) -> int:
    settings = load_settings(config)
    entry = OpenRequest(customer_email="mario.rossi@example.it", customer_name="Mario Rossi",
                        subject="Caldaia in blocco", description="Non parte.\nCodice E133.",
                        source=Source.API, author="api:ops")
    return store_call(config, lambda tx: open_request(tx, entry, now=FakeClock().now(),
                                                       settings=settings))


def test_assign_queues_the_signed_assignment_mail(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`assign` puts the employee on the intervention and queues their assignment mail,
    its Reply-To signed with the key the daemon also uses (kept in the data dir)."""
    run(capsys, "employee", "add", "ion@example.ro", "--name", "Ion Popescu", "--language",
        "ro", "--config", str(config))
    number = open_case(config)
    code, out, err = run(capsys, "assign", str(number), "ION@example.ro", "--config", str(config))
    assert code == 0, err
    assert out.strip() == (f"Assigned ion@example.ro to intervention {number} (assignment 1); "
                           "the assignment mail is queued for the daemon to send.")
    rows = store_call(config, lambda tx: tx.execute(
        "SELECT recipient, template, language, context FROM outbox WHERE kind = 'assignment'"
    ).fetchall())
    ((recipient, template, language, context_json),) = rows
    assert (recipient, template, language) == ("ion@example.ro", "assignment", "ro")
    reply_to = json.loads(context_json)["reply_to"]
    token = reply_to.partition("+")[2].partition("@")[0]
    assert verify_token(load_reply_keys(load_settings(config)), token, "ion@example.ro")


@pytest.mark.parametrize(("argv", "code", "message"), [
    (["1", "ion@example.ro"], 1, "already assigned"),
    (["1", "nobody@example.ro"], 1, "no employee with address nobody@example.ro"),
    (["9", "ion@example.ro"], 1, "intervention 9 does not exist"),
    (["1", "not-an-address"], 2, "employee_email: is not an email address"),
    (["one", "ion@example.ro"], 2, "invalid int value"),
])
def test_assign_refusals(
    config: Path, capsys: pytest.CaptureFixture[str], argv: list[str], code: int, message: str
) -> None:
    """A duplicate, an unknown employee or intervention exit 1; bad arguments exit 2."""
    run(capsys, "employee", "add", "ion@example.ro", "--name", "Ion Popescu",
        "--config", str(config))
    open_case(config)
    assert run(capsys, "assign", "1", "ion@example.ro", "--config", str(config))[0] == 0
    got, _, err = run(capsys, "assign", *argv, "--config", str(config))
    assert got == code
    assert message in err


def test_intervention_show_prints_details_assignments_and_thread(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`intervention show` prints the case, its assignments and every thread entry;
    --json prints the API's JSON; an unknown number exits 1."""
    run(capsys, "employee", "add", "ion@example.ro", "--name", "Ion Popescu",
        "--config", str(config))
    number = open_case(config)
    run(capsys, "assign", str(number), "ion@example.ro", "--config", str(config))
    code, out, err = run(capsys, "intervention", "show", str(number), "--config", str(config))
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0] == f"[#{number}] Caldaia in blocco  (open)"
    assert "customer:   Mario Rossi <mario.rossi@example.it>" in lines
    assert "  Ion Popescu <ion@example.ro>  pending" in lines
    assert "  Codice E133." in lines
    assert any("note (internal)  api:ops" in line for line in lines)
    assert any("assignment_mail (out)  to ion@example.ro" in line for line in lines)
    code, out, _ = run(capsys, "intervention", "show", str(number), "--json",
                       "--config", str(config))
    assert code == 0
    shown = json.loads(out)
    assert shown["assignments"][0]["employee_email"] == "ion@example.ro"
    assert shown["needs_attention"] == []
    code, _, err = run(capsys, "intervention", "show", "99", "--config", str(config))
    assert code == 1
    assert "intervention 99 does not exist" in err


def test_cli_times_are_the_companys() -> None:
    """The CLI shows stored UTC times to the minute in the company's time zone (summer
    and winter), and odd values as they are."""
    rome = ZoneInfo("Europe/Rome")
    assert local_minute("2026-12-03T14:05:00+00:00", rome) == "2026-12-03 15:05"
    assert local_minute("2026-07-01T08:00:00+00:00", rome) == "2026-07-01 10:00"
    assert local_minute(None, rome) == "-"
    assert local_minute("not a time", rome) == "not a time"

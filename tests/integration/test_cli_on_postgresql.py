"""The offline `nexusmail` commands on a PostgreSQL store, against a real cluster."""

from __future__ import annotations

import io
import json
import mailbox
import uuid
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_harness import SUPPORT, config_toml, make_config
from postgres_server import PostgresCluster

from nexusmail.cli.main import main

# A trigger failing every new intervention: a fault outside our code, so a mail is
# quarantined and a retry after the fault is gone processes it.
FAULT = """
CREATE FUNCTION injected_fault() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN RAISE EXCEPTION 'injected fault'; END $$;
CREATE TRIGGER injected_fault BEFORE INSERT ON interventions
    FOR EACH ROW EXECUTE FUNCTION injected_fault();
"""


def new_database(cluster: PostgresCluster) -> str:
    return cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")


def write_config(tmp_path: Path, url: str) -> str:
    path = tmp_path / "nm.toml"
    path.write_text(config_toml(make_config(tmp_path / "data",
                                            storage={"database_url": url})), "utf-8")
    return str(path)


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    with psycopg.connect(url) as conn:
        return [tuple(r) for r in conn.execute(sql)]


def customer_mail(n: int) -> bytes:
    msg = EmailMessage()
    msg["From"] = f"customer{n}@example.org"
    msg["To"] = SUPPORT
    msg["Subject"] = f"Centrala {n} nu pornește"
    msg["Message-ID"] = f"<pg-cli-{n}@example.org>"
    msg.set_content(f"Centrala numărul {n} s-a oprit.\n")
    msg.add_attachment(bytes([n]) * 64, maintype="application", subtype="octet-stream",
                       filename=f"poza-{n}.bin")
    return msg.as_bytes()


def write_mbox(path: Path, *numbers: int) -> str:
    box = mailbox.mbox(path)
    for n in numbers:
        box.add(customer_mail(n))
    box.close()
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert "Traceback" not in err
    return code, out, err


def test_offline_commands_work_on_postgresql(
    tmp_path: Path, postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Tokens, employees, operators, import, assign, intervention show, schedules, the
    customer archive and quarantine list/show/retry all run on a postgresql://
    database_url, creating the schema in an empty database, and what they write is in
    PostgreSQL."""
    url = new_database(postgres_cluster)
    config = write_config(tmp_path, url)
    c = ("--config", config)

    code, out, _ = run(capsys, "token", "create", "--name", "dispatcher", *c)
    assert code == 0
    assert rows(url, "SELECT name FROM api_tokens") == [("dispatcher",)]
    code, out, _ = run(capsys, "token", "list", *c)
    assert "dispatcher" in out
    assert "active" in out
    assert run(capsys, "token", "revoke", "1", *c)[0] == 0
    assert "revoked" in run(capsys, "token", "list", *c)[1]

    assert run(capsys, "employee", "add", "ion@firm.ro", "--name", "Ion Pop",
               "--language", "ro", *c)[0] == 0
    assert "ion@firm.ro" in run(capsys, "employee", "list", *c)[1]

    monkeypatch.setattr("sys.stdin", io.StringIO("a-long-enough-password\n"))
    assert run(capsys, "operator", "add", "anna@firm.ro", "--name", "Anna", *c)[0] == 0
    assert "anna@firm.ro" in run(capsys, "operator", "list", *c)[1]

    code, out, _ = run(capsys, "import", "mbox", write_mbox(tmp_path / "old.mbox", 1, 2), *c)
    assert code == 0, out
    assert "2 new_request" in out
    assert rows(url, "SELECT count(*) FROM attachments") == [(2,)]

    assert run(capsys, "assign", "1", "ion@firm.ro", *c)[0] == 0
    code, out, _ = run(capsys, "intervention", "show", "1", "--json", *c)
    detail = json.loads(out)
    assert detail["assignments"][0]["employee_email"] == "ion@firm.ro"
    assert detail["messages"][0]["attachments"][0]["filename"] == "poza-1.bin"

    code, out, err = run(capsys, "schedule", "add", "client@example.ro", "--subject",
                         "Revizie anuală", "--interval", "yearly", "--first-date",
                         "2031-03-01", "--lead-days", "7", *c)
    assert code == 0, err
    assert "Revizie anuală" in run(capsys, "schedule", "list", *c)[1]
    assert run(capsys, "schedule", "pause", "1", *c)[0] == 0
    assert rows(url, "SELECT active FROM schedules") == [(0,)]

    code, out, err = run(capsys, "customer", "add", "Rossi Impianti Srl", "--domain",
                         "rossi-impianti.it", *c)
    assert code == 0, err
    [(customer_id,)] = rows(url, "SELECT id FROM customers WHERE name = 'Rossi Impianti Srl'")
    assert run(capsys, "equipment", "add", str(customer_id), "SN-12-345/B", *c)[0] == 0
    assert run(capsys, "customer", "merge", "1", "--into", str(customer_id), *c)[0] == 0
    assert "Rossi Impianti" in run(capsys, "customer", "list", *c)[1]
    assert rows(url, "SELECT merged_into FROM customers WHERE id = 1") == [(customer_id,)]

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(FAULT)
    run(capsys, "import", "mbox", write_mbox(tmp_path / "more.mbox", 3), *c)
    [(qid,)] = rows(url, "SELECT id FROM inbound WHERE outcome = 'quarantined'")
    code, out, _ = run(capsys, "quarantine", "list", *c)
    assert "RaiseException" in out
    code, out, _ = run(capsys, "quarantine", "show", str(qid), *c)
    assert "Subject: Centrala 3" in out
    assert "injected fault" in out
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TRIGGER injected_fault ON interventions")
    code, out, _ = run(capsys, "quarantine", "retry", "--all", *c)
    assert code == 0, out
    assert "now new_request" in out
    assert rows(url, "SELECT count(*) FROM interventions") == [(3,)]


def test_an_unreachable_database_is_one_error_line_naming_it(
    tmp_path: Path, postgres_cluster: PostgresCluster, capsys: pytest.CaptureFixture[str],
) -> None:
    """A database that does not exist exits 1 with one line naming the URL, no traceback;
    `check-config` names the database it would use."""
    url = postgres_cluster.url("nm_does_not_exist")
    config = write_config(tmp_path, url)
    code, _, err = run(capsys, "token", "list", "--config", config)
    assert code == 1
    assert f"cannot use the store {url}" in err
    assert "nm_does_not_exist" in err
    code, out, _ = run(capsys, "check-config", "--config", config)
    assert f"# database: {url}" in out

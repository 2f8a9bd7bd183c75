"""The `nexusmail` command speaks the terminal's language (Italian, Romanian or English),
else the office's ([web] default_language): results, errors, the domain's refusals,
dates in the company's time zone."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from nexusmail.cli.check_config import account_lines
from nexusmail.cli.language import Speech, choose_language, locale_language, speaking
from nexusmail.cli.main import main
from nexusmail.clock import FakeClock
from nexusmail.config import load_settings
from nexusmail.ingest.imap.poller import AccountReport
from nexusmail.storage.connections import WriteTx
from nexusmail.storage.target import open_store
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request


@pytest.fixture
def config(tmp_path: Path) -> Path:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n'
                    '[scheduler]\ntimezone = "Europe/Rome"\n', encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], config: Path, *argv: str) -> tuple[int, str, str]:
    code = main([*argv, "--config", str(config)])
    out, err = capsys.readouterr()
    return code, out, err


def open_case(config: Path) -> int:
    """A case opened on 2 March 2026 at 09:00 UTC (10:00 in Rome)."""
    settings = load_settings(config)
    entry = OpenRequest(customer_email="mario.rossi@example.it", customer_name="Mario Rossi",
                        subject="Caldaia in blocco", description="Non parte.",
                        source=Source.API, author="api:ops")

    def write(tx: WriteTx) -> int:
        return open_request(tx, entry, now=FakeClock().now(), settings=settings)

    async def call() -> int:
        store = open_store(settings)
        await store.open()
        try:
            return await store.write(write)
        finally:
            await store.close()

    return asyncio.run(call())


@pytest.mark.parametrize(("environ", "default", "language"), [
    ({"LANG": "it_IT.UTF-8"}, None, "it"),
    ({"LANG": "ro_RO.UTF-8"}, "it", "ro"),
    ({"LANG": "en_GB.UTF-8"}, "it", "en"),
    ({"LC_ALL": "ro_RO.UTF-8", "LANG": "it_IT.UTF-8"}, None, "ro"),
    ({"LC_MESSAGES": "it_IT", "LANG": "en_US.UTF-8"}, None, "it"),
    ({"LANGUAGE": "ro:en", "LANG": "it_IT.UTF-8"}, None, "ro"),
    ({"LANGUAGE": "it", "LANG": "C.UTF-8"}, "ro", "ro"),
    ({"LANG": "de_DE.UTF-8"}, "ro", "ro"),
    ({"LANG": "C.UTF-8"}, "it", "it"),
    ({}, None, "en"),
    ({"LANG": "fr_FR.UTF-8"}, None, "en"),
])
def test_language_choice(environ: dict[str, str], default: str | None, language: str) -> None:
    """The locale's language when it is ours (LC_ALL over LC_MESSAGES over LANG, a
    LANGUAGE list beside a real locale first), else the configured default, else
    English."""
    assert choose_language(environ, default) == language


def test_a_neutral_locale_names_no_language() -> None:
    """C and POSIX name no language: the configured default decides."""
    assert locale_language({"LANG": "C"}) is None
    assert locale_language({"LC_ALL": "POSIX", "LANG": "it_IT.UTF-8"}) is None


def test_italian_results_refusals_and_errors(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """With LANG=it_IT.UTF-8: a result, the column titles, a refusal of the domain, a bad
    argument and a bad configuration key all come in Italian; the case shows its
    dates as dd/mm/yyyy in the company's zone."""
    monkeypatch.setenv("LANG", "it_IT.UTF-8")
    code, out, _ = run(capsys, config, "employee", "add", "luca@firm.test", "--name", "Luca",
                       "--language", "it")
    assert (code, out) == (0, "Aggiunto il tecnico 1: Luca <luca@firm.test> (it).\n")
    code, out, _ = run(capsys, config, "employee", "list")
    assert out.splitlines()[0].split() == ["ID", "EMAIL", "NOME", "LINGUA", "STATO"]
    assert "Italiano" in out or "italiano" in out
    code, _, err = run(capsys, config, "assign", "99", "luca@firm.test")
    assert (code, err) == (1, "nexusmail: l'intervento 99 non esiste\n")
    code, _, err = run(capsys, config, "schedule", "preview", "1", "--count", "0")
    assert (code, err) == (2, "nexusmail: --count deve essere compreso tra 1 e 500\n")
    number = open_case(config)
    code, out, _ = run(capsys, config, "assign", str(number), "luca@firm.test")
    assert out.startswith(f"Intervento {number} assegnato a luca@firm.test")
    code, out, _ = run(capsys, config, "intervention", "show", str(number))
    assert out.splitlines()[0] == f"[#{number}] Caldaia in blocco  (aperto)"
    assert "creato:     02/03/2026 10:00" in out
    assert "cliente:    Mario Rossi <mario.rossi@example.it>" in out
    code, _, err = run(capsys, config, "restore", str(config.parent / "nowhere"))
    assert code == 1
    assert err.startswith("nexusmail: nessun manifest.json leggibile in ")
    monkeypatch.setenv("NEXUSMAIL_SMTP__PORT", "venticinque")
    code, _, err = run(capsys, config, "check-config")
    assert code == 2
    assert err.startswith(f"nexusmail: configurazione non valida in {config} + variabili "
                          "d'ambiente (NEXUSMAIL_SMTP__PORT):")
    assert "[smtp] port:" in err


def test_romanian_in_its_own_process(config: Path) -> None:
    """`python -m nexusmail` under LANG=ro_RO.UTF-8 answers in Romanian: a result on
    stdout, the domain's refusal on stderr."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEXUSMAIL_")}
    env["LANG"] = "ro_RO.UTF-8"

    def nexusmail(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "nexusmail", *argv, "--config",
                               str(config)], capture_output=True, text=True, env=env,
                              timeout=60, check=False)

    added = nexusmail("employee", "add", "ion@firm.test", "--name", "Ion Popescu")
    assert added.stdout == "Tehnicianul 1 a fost adăugat: Ion Popescu <ion@firm.test> (en).\n"
    again = nexusmail("employee", "add", "ion@firm.test", "--name", "Ion Popescu")
    assert again.returncode == 1
    assert again.stderr.startswith("nexusmail: ")
    assert "already" not in again.stderr
    missing = nexusmail("employee", "disable", "nobody@firm.test")
    assert missing.returncode == 1
    bad = nexusmail("blobs", "gc", "--grace", "5x")
    assert (bad.returncode, bad.stderr) == (
        2, "nexusmail: --grace '5x': folosiți un număr urmat de s, m, h sau d, de ex. 24h\n")


def test_the_offices_language_when_the_locale_names_none(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Under the neutral C locale the CLI speaks [web] default_language; a locale that
    names English wins over it."""
    config.write_text(config.read_text(encoding="utf-8")
                      + '[web]\ndefault_language = "ro"\n', encoding="utf-8")
    open_case(config)
    capsys.readouterr()  # the new store's migration log
    code, _, err = run(capsys, config, "intervention", "show", "7")
    assert (code, err) == (1, "nexusmail: intervenția 7 nu există\n")
    monkeypatch.setenv("LANG", "en_US.UTF-8")
    code, _, err = run(capsys, config, "intervention", "show", "7")
    assert (code, err) == (1, "nexusmail: intervention 7 does not exist\n")


def test_english_output_is_unchanged(
    config: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """In English the stored words and ISO dates stay as scripts know them."""
    number = open_case(config)
    capsys.readouterr()  # the new store's migration log
    code, out, _ = run(capsys, config, "intervention", "show", str(number))
    assert code == 0
    assert out.splitlines()[0] == f"[#{number}] Caldaia in blocco  (open)"
    assert "created:    2026-03-02 10:00" in out


def test_usage_errors_in_the_locales_language_help_in_english(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """argparse's own refusals (a bad value, a missing argument) come in the locale's
    language; the synopsis and the --help page stay English, as written."""
    monkeypatch.setenv("LANG", "it_IT.UTF-8")
    assert main(["assign", "one", "luca@firm.test"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: nexusmail assign")
    assert "nexusmail assign: errore: argomento number: valore int non valido: 'one'" in err
    monkeypatch.setenv("LANG", "ro_RO.UTF-8")
    assert main(["schedule", "add", "x@firm.test"]) == 2
    assert "eroare: lipsesc argumentele obligatorii: --subject" in capsys.readouterr().err
    assert main(["assign", "--help"]) == 0
    assert "show this help message and exit" in capsys.readouterr().out


def test_check_config_in_italian(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """check-config's own lines and its warnings come in Italian; the settings
    themselves stay as the file spells them."""
    monkeypatch.setenv("LANG", "it_IT.UTF-8")
    config.write_text(config.read_text(encoding="utf-8") + '[smtp]\nprotocol = "lmtp"\n',
                      encoding="utf-8")
    code, out, err = run(capsys, config, "check-config")
    assert code == 0
    assert out.startswith(f"# configurazione valida ({config}; segreti nascosti)\n")
    assert 'protocol = "lmtp"' in out
    assert "attenzione: [mail] support_addresses: ancora il valore predefinito" in err


def test_an_imap_report_in_romanian() -> None:
    """What check-config found on an IMAP account, in Romanian; in English as before."""
    report = AccountReport(name="office", host="imap.firm.test", ok=True,
                           capabilities=("IDLE", "MOVE"), folder="INBOX",
                           folder_exists=True, messages=1234, move_to="Done",
                           move_to_exists=False)
    with speaking(Speech("ro")):
        assert account_lines(report) == [
            "office (imap.firm.test): OK", "  capabilități: IDLE MOVE",
            "  dosar 'INBOX': mesaje: 1.234",
            "  move_to 'Done': lipsește (va fi creat la prima mutare)"]
    assert account_lines(report)[2] == "  folder 'INBOX': 1,234 messages"

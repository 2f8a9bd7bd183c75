"""`nexusmail customer|contact|site|equipment|request-type ...`: the archive's offline
commands against a real store in a temporary data dir."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from nexusmail.cli.main import main


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n',
                    encoding="utf-8")
    return str(path)


def run(config: str, *args: str) -> int:
    return main([*args, "--config", config])


def test_customer_with_contact_site_and_machine(config: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """add, edit, list, show and the parts' add commands agree with each other, and the
    JSON is the API's shape."""
    # `employee add` sets the store up (archive commands expect one) and gives the
    # request type an assignee.
    assert run(config, "employee", "add", "tech@firm.it", "--name", "Tech",
               "--language", "it") == 0
    assert run(config, "customer", "add", "Rossi Impianti Srl", "--tax-id", "it 0123",
               "--email", "Info@Rossi.it", "--domain", "rossi.it", "--language", "it") == 0
    assert "Added customer 1: Rossi Impianti Srl." in capsys.readouterr().out
    assert run(config, "customer", "edit", "1", "--phone", "02 1234", "--email", "") == 0
    assert "changed: email, phone" in capsys.readouterr().out
    assert run(config, "contact", "add", "1", "--name", "Giulia", "--email", "g@rossi.it",
               "--channel", "phone") == 0
    assert run(config, "site", "add", "1", "Sede", "--address", "Via Roma 1") == 0
    assert run(config, "equipment", "add", "1", "AB-1", "--site-id", "1", "--model",
               "Vaillant", "--warranty-until", "2027-01-31") == 0
    capsys.readouterr()
    assert run(config, "customer", "list", "--q", "IT0123", "--json") == 0
    [listed] = json.loads(capsys.readouterr().out)["items"]
    assert (listed["tax_id"], listed["email"], listed["phone"]) == ("IT0123", None, "02 1234")
    assert run(config, "customer", "show", "1") == 0
    card = capsys.readouterr().out
    assert "domains: rossi.it" in card
    assert "g@rossi.it" in card
    assert "Via Roma 1" in card
    assert "AB-1  Vaillant  warranty until 2027-01-31" in card
    assert run(config, "equipment", "show", "1", "--json") == 0
    assert json.loads(capsys.readouterr().out)["interventions"] == []
    assert run(config, "request-type", "add", "repair", "--en", "Repair", "--assignee",
               "tech@firm.it") == 0
    assert run(config, "request-type", "list") == 0
    table = capsys.readouterr().out
    assert "service_schedule" in table
    assert "tech@firm.it" in table
    assert run(config, "request-type", "add", "check", "--no-closing-mail") == 0
    capsys.readouterr()
    assert run(config, "request-type", "list", "--json") == 0
    switches = {t["code"]: t["customer_closing_mail"]
                for t in json.loads(capsys.readouterr().out)}
    assert (switches["check"], switches["repair"]) == (False, None)


def test_refusals_name_the_field_and_exit_non_zero(
    config: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A bad value exits 2 naming the field; a clash or an unknown id exits 1."""
    assert run(config, "employee", "add", "tech@firm.it", "--name", "T", "--language",
               "it") == 0
    assert run(config, "customer", "add", "A", "--domain", "a.it") == 0
    assert run(config, "customer", "add", "B", "--owner", "nobody@firm.it") == 2
    assert "owner: no operator" in capsys.readouterr().err
    assert run(config, "customer", "add", "B", "--domain", "A.IT") == 1
    assert "mail_domains: a.it is a domain of customer 1" in capsys.readouterr().err
    assert run(config, "equipment", "add", "1", "X", "--installed-on", "ieri") == 2
    assert "installed_on" in capsys.readouterr().err
    assert run(config, "site", "add", "9", "Sede") == 1
    assert "customer 9 does not exist" in capsys.readouterr().err
    assert run(config, "customer", "merge", "1", "--into", "1") == 2
    assert "into:" in capsys.readouterr().err

"""`nexusmail import customers|equipment FILE`: real CSV files as Italian and Romanian
Excel write them, into a real store; bad lines reported by number while the good ones
are imported, a second run changes nothing, --dry-run writes nothing."""

from __future__ import annotations

import asyncio
import codecs
import sqlite3
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pytest
from daemon_harness import config_toml, make_config
from postgres_server import PostgresCluster

from nexusmail.cli.main import main
from nexusmail.config import load_settings
from nexusmail.paths import database_path
from nexusmail.tickets.store import Store

CUSTOMERS_IT = (
    "Ragione sociale;P.IVA;Indirizzo;Telefono;E-mail;Domini;Lingua;Colore\r\n"
    "Rossi Caldaie S.r.l.;IT01234567890;Via Po 1, Torino;011 555;info@rossi-srl.it;"
    "rossi-srl.it|rossi.it;it;blu\r\n"
    "Bar Là di Giò;02345678901;Piazza Città 3;;bar@giò.example.it;;it;\r\n"
    ";03456789012;senza nome;;;;;\r\n"
    "Pasticceria Dolce;04567890123;;;dolce@example.it;gmail.com;;\r\n"
    "Termo Nord;05678901234;\"Via Roma 2; scala B\";;;;;\r\n"
)
CUSTOMERS_RO = (
    "Denumire,CUI,Adresă,Telefon,Email,Limba\r\n"
    'Termoinstal SRL,RO12345678,"Str. Ştefan cel Mare 5, Iaşi",0232 111,office@termo.ro,ro\r\n'
    "Fără cod,,,,,ro\r\n"
)
EQUIPMENT_IT = (
    "P.IVA cliente;Sede;Matricola;Modello;Data installazione;Scadenza garanzia;Note\r\n"
    "IT01234567890;Magazzino;AB1234;Vaillant ecoTEC;01/03/2024;01/03/2026;\r\n"
    "IT01234567890;Magazzino;AB1235;Vaillant ecoTEC;01/03/2024;;caldaia 2\r\n"
    "IT01234567890;Uffici;XC-9000;Daikin;2023-05-10;;\r\n"
    "99999999999;;ZZ0001;;;;\r\n"
    "IT01234567890;;AB1236;;31/02/2024;;\r\n"
    "IT01234567890;;4,71E+12;;;;\r\n"
)


@pytest.fixture
def config(tmp_path: Path) -> str:
    path = tmp_path / "nexusmail.toml"
    path.write_text(f'[storage]\ndata_dir = "{(tmp_path / "data").as_posix()}"\n'
                    '[customers]\ndefault_owner = "dispatch@firm.test"\n', encoding="utf-8")

    async def create() -> None:
        async with Store(database_path(load_settings(path))):
            pass

    asyncio.run(create())
    return str(path)


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def query(config: str, sql: str) -> list[tuple[Any, ...]]:
    with sqlite3.connect(database_path(load_settings(Path(config)))) as conn:
        return conn.execute(sql).fetchall()


def write(tmp_path: Path, name: str, text: str, encoding: str, bom: bytes = b"") -> str:
    path = tmp_path / name
    path.write_bytes(bom + text.encode(encoding))
    return str(path)


@pytest.mark.parametrize(("encoding", "bom"), [("utf-8", b""), ("utf-8", codecs.BOM_UTF8),
                                               ("cp1252", b"")])
def test_italian_customers_with_bad_lines(tmp_path: Path, config: str, encoding: str,
                                          bom: bytes, capsys: pytest.CaptureFixture[str]
                                          ) -> None:
    """A ';' sheet in UTF-8, UTF-8 with BOM or Windows-1252: the good rows are imported
    with their accents, domains and default owner; the bad ones are reported by line
    (no name, a free-mail domain) and the exit status is 1; the unknown column is named."""
    path = write(tmp_path, "clienti.csv", CUSTOMERS_IT, encoding, bom)
    code, out, err = run(capsys, "--config", config, "import", "customers", path)
    assert code == 1
    assert "line 4: name is empty" in err
    assert "line 5: mail domain 'gmail.com' is a free-mail domain" in err
    assert "columns ignored (not known): Colore" in err
    assert "3 were created, 0 updated, 0 unchanged; 2 lines refused" in out
    assert query(config, "SELECT name, tax_id, address, email, language, owner, verified"
                         " FROM customers ORDER BY id") == [
        ("Rossi Caldaie S.r.l.", "IT01234567890", "Via Po 1, Torino", "info@rossi-srl.it",
         "it", "dispatch@firm.test", 1),
        ("Bar Là di Giò", "02345678901", "Piazza Città 3", "bar@giò.example.it", "it",
         "dispatch@firm.test", 1),
        ("Termo Nord", "05678901234", "Via Roma 2; scala B", None, None,
         "dispatch@firm.test", 1),
    ]
    assert query(config, "SELECT domain, customer_id FROM customer_domains ORDER BY domain"
                 ) == [("rossi-srl.it", 1), ("rossi.it", 1)]


@pytest.mark.parametrize("encoding", ["utf-8", "cp1250"])
def test_romanian_customers_with_commas(tmp_path: Path, config: str, encoding: str,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    """A ',' sheet with Romanian headers, in UTF-8 or Windows-1250, keeps ş and ă; a
    row with neither tax id nor email is refused by its line."""
    path = write(tmp_path, "clienti.csv", CUSTOMERS_RO, encoding)
    code, out, err = run(capsys, "--config", config, "import", "customers", path)
    assert code == 1
    assert "line 3: tax_id and email are both empty" in err
    assert f"({encoding}, ',')" in out
    assert query(config, "SELECT name, tax_id, address, language FROM customers") == [
        ("Termoinstal SRL", "RO12345678", "Str. Ştefan cel Mare 5, Iaşi", "ro")]


def test_a_second_run_changes_nothing_and_a_changed_row_updates(
        tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Importing the same file again finds every customer by tax id: all unchanged. A
    changed value updates that customer only; an empty cell erases nothing; a customer
    known only by the address mail gave it gets the tax id."""
    path = write(tmp_path, "clienti.csv", CUSTOMERS_IT, "utf-8")
    run(capsys, "--config", config, "import", "customers", path)
    code, out, _ = run(capsys, "--config", config, "import", "customers", path)
    assert code == 1  # the same two bad lines
    assert "0 were created, 0 updated, 3 unchanged" in out
    changed = write(tmp_path, "nuovi.csv",
                    "name;tax_id;phone;email\n"
                    "Rossi Caldaie S.r.l.;IT 0123 4567 890;011 999;\n"
                    "Gelateria;06789012345;;bar@giò.example.it\n", "utf-8")
    code, out, err = run(capsys, "--config", config, "import", "customers", changed)
    assert code == 0
    assert "line" not in err
    assert "1 were created, 1 updated, 0 unchanged" in out
    assert query(config, "SELECT phone, email FROM customers WHERE id = 1") == [
        ("011 999", "info@rossi-srl.it")]
    with sqlite3.connect(database_path(load_settings(Path(config)))) as conn:
        conn.execute("INSERT INTO customers (name, email, verified, created_at)"
                     " VALUES ('mario', 'mario@caldaie.example', 0, '2026-01-01')")
    by_mail = write(tmp_path, "by-mail.csv", "name;tax_id;email\n"
                    "Caldaie Mario;08888888888;mario@caldaie.example\n"
                    "Nuovo;77777777777;info@rossi-srl.it\n", "utf-8")
    code, out, _ = run(capsys, "--config", config, "import", "customers", by_mail)
    assert code == 0
    # The customer mail created gets its tax id; info@rossi-srl.it under another tax id
    # is another firm: created, not merged into Rossi.
    assert "1 were created, 1 updated" in out
    assert query(config, "SELECT name, tax_id FROM customers WHERE email ="
                         " 'mario@caldaie.example'") == [("Caldaie Mario", "08888888888")]


def test_dry_run_writes_nothing(tmp_path: Path, config: str,
                                capsys: pytest.CaptureFixture[str]) -> None:
    """--dry-run checks and counts every line, reports the bad ones, writes nothing."""
    path = write(tmp_path, "clienti.csv", CUSTOMERS_IT, "cp1252")
    code, out, err = run(capsys, "--config", config, "import", "customers", path, "--dry-run")
    assert code == 1
    assert "line 4: name is empty" in err
    assert "3 would be created" in out
    assert "Dry run: nothing was written." in out
    assert query(config, "SELECT count(*) FROM customers") == [(0,)]
    assert query(config, "SELECT count(*) FROM customer_domains") == [(0,)]


def test_equipment_with_sites_and_bad_lines(tmp_path: Path, config: str,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    """Machines are imported for the customer named by tax id, their sites created once
    by name; an unknown customer, an impossible date and Excel's shortened serial are
    refused by line; a second run changes nothing, a changed model updates it."""
    run(capsys, "--config", config, "import", "customers",
        write(tmp_path, "c.csv", CUSTOMERS_IT, "utf-8"))
    path = write(tmp_path, "matricole.csv", EQUIPMENT_IT, "cp1252", b"")
    code, out, err = run(capsys, "--config", config, "import", "equipment", path)
    assert code == 1
    assert "line 5: customer_tax_id 99999999999: no customer has it" in err
    assert "line 6: installed_on '31/02/2024' is not a date" in err
    assert "line 7: serial '4,71E+12' was shortened by Excel" in err
    assert "3 were created, 0 updated, 0 unchanged; 3 lines refused" in out
    assert query(config, "SELECT e.serial, e.model, s.name, e.installed_on, e.warranty_until"
                         " FROM equipment e JOIN sites s ON s.id = e.site_id ORDER BY e.id"
                 ) == [
        ("AB1234", "Vaillant ecoTEC", "Magazzino", "2024-03-01", "2026-03-01"),
        ("AB1235", "Vaillant ecoTEC", "Magazzino", "2024-03-01", None),
        ("XC-9000", "Daikin", "Uffici", "2023-05-10", None),
    ]
    assert query(config, "SELECT count(*) FROM sites") == [(2,)]
    _, out, _ = run(capsys, "--config", config, "import", "equipment", path)
    assert "0 were created, 0 updated, 3 unchanged" in out
    moved = write(tmp_path, "m.csv", "customer_id,serial,model\n1,ab1234,ecoTEC plus\n",
                  "utf-8")
    code, out, _ = run(capsys, "--config", config, "import", "equipment", moved)
    assert code == 0
    assert "0 were created, 1 updated" in out
    assert query(config, "SELECT model FROM equipment WHERE serial = 'AB1234'") == [
        ("ecoTEC plus",)]


def test_a_header_without_the_key_columns_is_refused(
        tmp_path: Path, config: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A file whose header names no serial or no customer is a usage error (2) naming
    what is missing; a missing file likewise."""
    path = write(tmp_path, "x.csv", "modello;note\nA;b\n", "utf-8")
    code, _, err = run(capsys, "--config", config, "import", "equipment", path)
    assert code == 2
    assert "names no column for serial, customer_tax_id or customer_id" in err
    code, _, err = run(capsys, "--config", config, "import", "customers",
                       str(tmp_path / "absent.csv"))
    assert code == 2
    assert "cannot read it" in err


def test_import_on_postgresql(tmp_path: Path, postgres_cluster: PostgresCluster,
                              capsys: pytest.CaptureFixture[str]) -> None:
    """On PostgreSQL the same file imports the same way: a refused line is undone alone
    (its savepoint) while the lines around it are kept, and a second run is unchanged."""
    url = postgres_cluster.create_database(f"nm_{uuid.uuid4().hex[:12]}")
    cfg = tmp_path / "nm.toml"
    cfg.write_text(config_toml(make_config(tmp_path / "data", storage={"database_url": url})),
                   "utf-8")
    path = write(tmp_path, "clienti.csv", CUSTOMERS_IT, "cp1252")
    code, out, err = run(capsys, "--config", str(cfg), "import", "customers", path)
    assert code == 1
    assert "line 5: mail domain 'gmail.com' is a free-mail domain" in err
    assert "3 were created" in out
    equipment = write(tmp_path, "m.csv", EQUIPMENT_IT, "utf-8")
    code, out, _ = run(capsys, "--config", str(cfg), "import", "equipment", equipment)
    assert "3 were created, 0 updated, 0 unchanged; 3 lines refused" in out
    _, out, _ = run(capsys, "--config", str(cfg), "import", "customers", path)
    assert "0 were created, 0 updated, 3 unchanged" in out
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT count(*) FROM sites").fetchone() == (2,)
        assert conn.execute("SELECT name FROM customers ORDER BY id").fetchall() == [
            ("Rossi Caldaie S.r.l.",), ("Bar Là di Giò",), ("Termo Nord",)]

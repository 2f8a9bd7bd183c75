"""Benchmark (not a test): `nexusmail import customers` and `import equipment` on big files.

    python bench/csv_import.py                     # 10,000 customers, 10,000 machines
    python bench/csv_import.py --rows 50000 --encoding cp1252

Writes two CSV files as Italian Excel does (";" separated, Windows-1252 or UTF-8 with
BOM, Italian headers) into a temporary directory, creates an empty store there, then
runs the real commands through `nexusmail.cli.main.main` in this process: customers,
then equipment (each machine at one of its customer's sites, created on the way), then
both again (every row found unchanged). Prints rows/s for each run.
"""

from __future__ import annotations

import argparse
import asyncio
import codecs
import contextlib
import io
import platform
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from machine import cpu_model

from nexusmail.cli.main import main
from nexusmail.config import load_settings
from nexusmail.paths import database_path
from nexusmail.tickets.store import Store


def customers_csv(rows: int) -> str:
    lines = ["Ragione sociale;P.IVA;Indirizzo;Telefono;E-mail;Domini;Lingua;Note"]
    for n in range(rows):
        lines.append(f"Impianti Città {n} S.r.l.;IT{n:011d};Via Garibaldi {n}, Torino;"
                     f"011 {n:07d};info{n}@cliente{n}.it;cliente{n}.it;it;cliente dal 2019")
    return "\r\n".join(lines) + "\r\n"


def equipment_csv(rows: int, customers: int) -> str:
    lines = ["P.IVA cliente;Sede;Matricola;Modello;Data installazione;Scadenza garanzia"]
    for n in range(rows):
        customer = n % customers
        lines.append(f"IT{customer:011d};Sede {n % 3};SN{n:08d}-B;Caldaia ecoTEC;"
                     f"01/03/2024;01/03/2026")
    return "\r\n".join(lines) + "\r\n"


def timed(argv: list[str]) -> tuple[int, float, str]:
    out = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
        code = main(argv)
    return code, time.perf_counter() - started, out.getvalue().strip()


def run(rows: int, customers: int, encoding: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        config = base / "nexusmail.toml"
        config.write_text(f'[storage]\ndata_dir = "{(base / "data").as_posix()}"\n'
                          '[log]\nlevel = "warning"\n', encoding="utf-8")
        settings = load_settings(config)

        async def create() -> None:
            async with Store(database_path(settings)):
                pass

        asyncio.run(create())
        bom = codecs.BOM_UTF8 if encoding == "utf-8-sig" else b""
        codec = "utf-8" if encoding == "utf-8-sig" else encoding
        files = {"customers": (base / "clienti.csv", customers_csv(customers), customers),
                 "equipment": (base / "matricole.csv", equipment_csv(rows, customers), rows)}
        for path, text, _ in files.values():
            path.write_bytes(bom + text.encode(codec))
        print(f"python {platform.python_version()}, sqlite {sqlite3.sqlite_version}, "
              f"{cpu_model()}, {encoding}")
        for round_name in ("first", "again"):
            for kind, (path, _, count) in files.items():
                code, seconds, summary = timed(["--config", str(config), "import", kind,
                                                str(path)])
                print(f"{round_name:5} {kind:9} {count:>7} rows {seconds:6.2f} s "
                      f"{count / seconds:8.0f} rows/s exit {code}: {summary}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000, help="equipment rows")
    parser.add_argument("--customers", type=int, default=10_000, help="customer rows")
    parser.add_argument("--encoding", default="cp1252",
                        choices=["cp1252", "utf-8", "utf-8-sig"])
    args = parser.parse_args()
    sys.exit(run(args.rows, args.customers, args.encoding))

"""`nexusmail migrate-store --to postgresql://...`: move a SQLite installation to PostgreSQL
(nexusmail.storage.store_move), with a progress bar, then say what to change in the
configuration."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from nexusmail.cli.language import say, speech, text
from nexusmail.cli.support import (
    EXIT_OK,
    EXIT_USAGE,
    AddCommand,
    AddGroup,
    fail,
    print_table,
    require_store,
)
from nexusmail.config import Settings
from nexusmail.i18n import N_, Msg, message_of, msg
from nexusmail.ingest.mbox_import import ProgressBar
from nexusmail.storage.store_move import MoveError, TableMoved, move_store, source_counts
from nexusmail.storage.target import database_target


def register(commands: Any, config_opt: argparse.ArgumentParser, add: AddCommand,
             group: AddGroup) -> None:
    """Add `migrate-store` to the CLI's parser."""
    cmd = add(commands, "migrate-store", cmd_migrate_store,
              "Copy the configured SQLite store, every row of every table with its ids, "
              "into an empty PostgreSQL database, then verify each table's row count and "
              "content hash. Stop the daemon first (mail taken after the copy began would "
              "stay behind in SQLite). The SQLite file is left as it was; attachment "
              "files stay in the data dir. A non-empty target is refused; a failed or "
              "unverified copy leaves the target empty.",
              "  nexusmail migrate-store --to postgresql://nexusmail@db.firm.lan/nexusmail\n"
              "  nexusmail migrate-store --to postgresql://nexusmail@db/nm "
              "--password-file /etc/nexusmail/db-password")
    cmd.add_argument("--to", required=True, metavar="URL",
                     help="postgresql://user@host:port/dbname, without a password")
    cmd.add_argument("--password-file", type=Path, metavar="FILE",
                     help="file holding the database password (default: [storage] "
                          "database_password_file, else PGPASSWORD or ~/.pgpass)")


def cmd_migrate_store(args: argparse.Namespace, settings: Settings) -> int:
    url: str = args.to
    problem = _url_problem(url)
    if problem:
        return fail(msg("--to: {problem}", problem=problem), EXIT_USAGE)
    source = database_target(settings)
    if source.sqlite_path is None:
        return fail(msg("the configured store is already PostgreSQL ([storage] database_url); "
                        "migrate-store moves a SQLite store"), EXIT_USAGE)
    require_store(settings)
    password_file: Path | None = args.password_file or settings.storage.database_password_file
    try:
        password = (password_file.read_text(encoding="utf-8").strip()
                    if password_file is not None else None)
    except OSError as exc:
        return fail(msg("cannot read the password file {path}: {problem}",
                        path=str(password_file), problem=exc.strerror), EXIT_USAGE)
    bar = ProgressBar(sum(source_counts(source.sqlite_path).values()),
                      label=text(msg("rows")), words=text)
    try:
        moved = move_store(source.sqlite_path, url, password=password,
                           progress=lambda table, rows: bar.advance(rows))
    except MoveError as exc:
        return fail(msg("nothing was moved: {problem}", problem=message_of(exc)))
    except psycopg.Error as exc:
        return fail(msg("nothing was moved: the target database {url}: {problem}", url=url,
                        problem=str(exc)))
    bar.finish()
    _print_outcome(moved, settings, url, password_file)
    return EXIT_OK


def _url_problem(url: str) -> Msg | None:
    """Why `url` cannot be the target, or None."""
    if url.partition("://")[0].lower() not in {"postgresql", "postgres"}:
        return msg("give a postgresql://user@host:port/dbname URL")
    try:
        parts = conninfo_to_dict(url)
    except psycopg.ProgrammingError as exc:
        return msg("not a valid URL: {problem}", problem=str(exc))
    if "password" in parts:
        return msg("put the password in a file (--password-file) or PGPASSWORD, not in the "
                   "URL: the URL is shown and goes into the configuration")
    return None


def _print_outcome(moved: list[TableMoved], settings: Settings, url: str,
                   password_file: Path | None) -> None:
    number = speech().number
    print_table([N_("TABLE"), N_("ROWS"), N_("CONTENT SHA256")],
                [[t.name, number(t.rows), t.sha256[:16]] for t in moved])
    total = sum(t.rows for t in moved)
    say(msg("\nMoved {total} rows in {tables} tables to {url}; every table's row count "
            "and content hash match the SQLite store.", total=number(total),
            tables=number(len(moved)), url=url))
    say(msg("\nNow point the configuration at it ([storage] section), then start the "
            "daemon:\n"))
    print("[storage]")
    print(f"data_dir = {json.dumps(settings.storage.data_dir.as_posix())}   # "
          + text(msg("unchanged: attachment files and keys stay here")))
    print(f"database_url = {json.dumps(url)}")
    if password_file is not None:
        print(f"database_password_file = {json.dumps(password_file.as_posix())}")
    say(msg("\nThe SQLite file {path} was left as it was: keep it until the daemon runs "
            "well on PostgreSQL, then remove it.", path=database_target(settings).describe()))

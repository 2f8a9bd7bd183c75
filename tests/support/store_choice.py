"""Which store a test's daemon and store fixtures use: SQLite in the test's data dir (the
default), or PostgreSQL when pytest runs with `--store=postgresql`.

Every test asks one place, `database_url_for(data_dir)` (through `make_config` and the
`store` fixture), so the harness, the fixtures and the config files written for daemons
in subprocesses agree on which database belongs to which data dir.

On PostgreSQL each test module gets one database copied from a template migrated once per
run (CREATE DATABASE ... TEMPLATE takes ~0.13 s, migrating ~0.35 s), and it is emptied
when a test first asks for it, so each test starts from an empty store as on SQLite. A
test that opens a store for a second data dir (a restore target, a second daemon's, a
temporary dir per hypothesis example) gets a further copy, handed back when the test
ends or its dir is removed, and emptied for the next one: DROP DATABASE checkpoints
(seconds on a busy machine), emptying takes milliseconds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from postgres_server import PostgresCluster, postgres_available

from nexusmail.storage.connections import Storage
from nexusmail.tickets.store import Store

SQLITE = "sqlite"
POSTGRESQL = "postgresql"
TEMPLATE = "nm_template"


class PostgresDatabases:
    """The run's throwaway cluster (started on first use) and its test databases."""

    def __init__(self) -> None:
        self._cluster: PostgresCluster | None = None
        self._modules: dict[str, str] = {}
        self._spare: list[str] = []  # copies no test holds, with rows left in them

    def cluster(self) -> PostgresCluster:
        if self._cluster is None:
            missing = postgres_available()
            if missing:
                raise RuntimeError(missing)
            self._cluster = PostgresCluster().start()
        return self._cluster

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.stop()
            self._cluster = None

    def _template(self) -> str:
        import psycopg

        from nexusmail.storage.postgresql import connect, migrate

        cluster = self.cluster()
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s",
                                  (TEMPLATE,)).fetchone()
        if exists is None:
            with connect(cluster.create_database(TEMPLATE)) as conn:
                migrate(conn)
                conn.commit()
                keep_seed_rows(conn)
                conn.commit()
        return TEMPLATE

    def copy(self) -> str:
        """A database with the migrated schema and no rows; its URL."""
        if self._spare:
            url = self._spare.pop()
            empty(url)
            return url
        return self.cluster().create_database(f"nm_{uuid.uuid4().hex[:12]}",
                                              template=self._template())

    def give_back(self, url: str) -> None:
        """A copy from `copy()` no test uses any more."""
        self._spare.append(url)

    def for_module(self, module: str) -> str:
        """The module's database, emptied."""
        url = self._modules.get(module)
        if url is None:
            url = self._modules[module] = self.copy()
        else:
            empty(url)
        return url


def keep_seed_rows(conn: Any) -> None:
    """Copy the rows the migrations wrote (a seeded request type, ...) and where the
    identities stood into the schema `nm_seed` of the freshly migrated template, so
    `empty` can put a used copy back as it was."""
    conn.execute("CREATE SCHEMA nm_seed")
    for (table,) in conn.execute(_TABLES).fetchall():
        if conn.execute(f'SELECT 1 FROM public."{table}" LIMIT 1').fetchone():  # noqa: S608
            conn.execute(f'CREATE TABLE nm_seed."{table}" AS SELECT * FROM public."{table}"')  # noqa: S608
    conn.execute("CREATE TABLE nm_seed.sequences_at AS SELECT sequencename, last_value"
                 " FROM pg_sequences WHERE schemaname = 'public'")


_TABLES = ("SELECT tablename FROM pg_tables WHERE schemaname = 'public'"
           " AND tablename <> 'schema_migrations'")


def empty(url: str) -> None:
    """Put the database back as the migrations left it: every row deleted but the ones
    they wrote, the identities where they stood (~20 ms, where TRUNCATE takes ~0.2 s)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        tables = [row[0] for row in conn.execute(_TABLES)]
        seeded = [row[0] for row in conn.execute(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'nm_seed'"
            " AND tablename <> 'sequences_at'")]
        # Generated columns (the full-text vectors) are computed, never inserted.
        columns = {table: ", ".join(f'"{row[0]}"' for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema ="
            " 'public' AND table_name = %s AND is_generated = 'NEVER'"
            " ORDER BY ordinal_position", (table,))) for table in seeded}
        sequences = conn.execute("SELECT sequencename, last_value FROM nm_seed.sequences_at"
                                 ).fetchall()
        # replica: foreign keys are not checked, so the order of the statements is free
        script = ["SET session_replication_role = replica"]
        script += [f'DELETE FROM "{table}"' for table in tables]  # noqa: S608 - catalog names
        script += [f'INSERT INTO public."{table}" ({cols}) OVERRIDING SYSTEM VALUE'  # noqa: S608
                   f' SELECT {cols} FROM nm_seed."{table}"' for table, cols in columns.items()]
        script += [f"SELECT setval('public.\"{name}\"', {int(last)})" if last is not None
                   else f'ALTER SEQUENCE public."{name}" RESTART' for name, last in sequences]
        script.append("SET session_replication_role = DEFAULT")
        conn.execute("; ".join(script).encode())


class TestStores:
    """One test's databases: which data dir has which."""

    def __init__(self, databases: PostgresDatabases | None, module: str) -> None:
        self._databases = databases
        self._module = module
        self._by_dir: dict[Path, str] = {}
        self._extra: dict[Path, str] = {}
        self._seen: set[Path] = set()  # extra dirs that existed once

    @property
    def dialect(self) -> str:
        return SQLITE if self._databases is None else POSTGRESQL

    def url_for(self, data_dir: Path) -> str:
        if self._databases is None:
            return ""
        key = data_dir.resolve()
        self._hand_back_removed_dirs()
        if key not in self._by_dir:
            if not self._by_dir:
                url = self._databases.for_module(self._module)
            else:
                url = self._extra[key] = self._databases.copy()
            self._by_dir[key] = url
        return self._by_dir[key]

    def _hand_back_removed_dirs(self) -> None:
        assert self._databases is not None
        for path, url in list(self._extra.items()):
            if path.exists():
                self._seen.add(path)
            elif path in self._seen:  # its data dir is gone: so is its store
                del self._extra[path], self._by_dir[path]
                self._seen.discard(path)
                self._databases.give_back(url)

    def finish(self) -> None:
        if self._databases is not None:
            for url in self._extra.values():
                self._databases.give_back(url)


_active = TestStores(None, "")


@contextmanager
def active(stores: TestStores) -> Iterator[TestStores]:
    """Make `stores` the running test's (tests/conftest.py does, around each test)."""
    global _active
    previous, _active = _active, stores
    try:
        yield stores
    finally:
        _active = previous
        stores.finish()


def dialect() -> str:
    """"sqlite" or "postgresql": the store this run's tests use."""
    return _active.dialect


def database_url_for(data_dir: Path) -> str:
    """`[storage] database_url` for a daemon on `data_dir`: "" (SQLite in the data dir)
    or the test's PostgreSQL database for that dir."""
    return _active.url_for(data_dir)


def store_at(data_dir: Path) -> Storage:
    """The store of `data_dir`, not opened yet (`async with store_at(dir) as store:`)."""
    url = database_url_for(data_dir)
    if not url:
        return Store(data_dir / "nexusmail.sqlite3")
    from nexusmail.storage.pg_store import PgStore

    return PgStore(url)

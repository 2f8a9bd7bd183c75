"""A throwaway PostgreSQL 15 cluster (Debian packages `postgresql`, `postgresql-contrib`).

    cluster = PostgresCluster().start()           # initdb + pg_ctl start on loopback
    url = cluster.create_database("nm_test")      # postgresql://nexus@127.0.0.1:PORT/nm_test
    cluster.crash()                               # pg_ctl -m immediate stop (a crash)
    cluster.start()                               # crash recovery, same data
    cluster.stop()                                # and the directory is removed

initdb refuses root, so the server runs as the `postgres` system user in a directory it
owns; trust authentication on 127.0.0.1 only, fsync kept on (the crash tests need real
durability), no Unix socket outside the temporary directory.
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

PGBIN = Path("/usr/lib/postgresql/15/bin")
SUPERUSER = "nexus"
START_TIMEOUT_S = 30


def postgres_available() -> str | None:
    """None when a cluster can be started here, else why not."""
    if not (PGBIN / "initdb").exists():
        return "PostgreSQL 15 is not installed (Debian: postgresql postgresql-contrib)"
    if os.geteuid() != 0:
        return "starting a throwaway cluster as the postgres user needs root"
    try:
        pwd.getpwnam("postgres")
    except KeyError:
        return "there is no postgres system user"
    return None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class PostgresCluster:
    """One cluster in a temporary directory, reachable on 127.0.0.1:port."""

    def __init__(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="nm-postgres-"))
        self.data = self.root / "data"
        self.port = _free_port()
        self._initialised = False

    def _as_postgres(self, *args: str, timeout: float = 60) -> None:
        result = subprocess.run(list(args), user="postgres", group="postgres",
                                capture_output=True, text=True, timeout=timeout, check=False)
        if result.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {result.stderr or result.stdout}")

    def start(self) -> PostgresCluster:
        if not self._initialised:
            os.chmod(self.root, 0o755)  # noqa: S103 - the server's user must reach it
            shutil.chown(self.root, "postgres", "postgres")
            self._as_postgres(str(PGBIN / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                              "--auth=trust", "-E", "UTF8", "--locale=C.UTF-8",
                              "--no-sync", "--no-instructions")
            self._initialised = True
        self._as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.data),
                          "-l", str(self.root / "server.log"), "-w", "-t",
                          str(START_TIMEOUT_S), "-o",
                          f"-h 127.0.0.1 -p {self.port} -k {self.root}", "start",
                          timeout=START_TIMEOUT_S + 10)
        return self

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str, *, template: str | None = None) -> str:
        """A new database (copied from `template` when given); its URL."""
        import psycopg  # the test extras carry it; imported where a cluster is used

        with psycopg.connect(self.url(), autocommit=True) as conn:
            suffix = f' TEMPLATE "{template}"' if template else ""
            conn.execute(f'CREATE DATABASE "{name}"{suffix}')
        return self.url(name)

    def crash(self) -> None:
        """Stop without a checkpoint, as a power cut would (recovery at next start)."""
        self._as_postgres(str(PGBIN / "pg_ctl"), "-D", str(self.data), "-m", "immediate",
                          "-w", "stop")

    def stop(self) -> None:
        try:
            if (self.data / "postmaster.pid").exists():
                self.crash()
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def log_text(self) -> str:
        path = self.root / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

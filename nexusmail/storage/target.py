"""Which database the settings name, and the store that opens it.

`[storage] database_url` empty (the default) or `sqlite:///file` is the embedded SQLite
store; `postgresql://user@host:port/db` is PostgreSQL, with the password read from
`[storage] database_password_file` (or left to libpq: PGPASSWORD, ~/.pgpass), so it is
never in the config file, a log line or `check-config`'s output.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from nexusmail.config import ConfigError, Settings
from nexusmail.i18n import msg
from nexusmail.paths import database_path
from nexusmail.storage.connections import Storage
from nexusmail.tickets.store import Store

Dialect = Literal["sqlite", "postgresql"]


@dataclass(frozen=True)
class DatabaseTarget:
    dialect: Dialect
    sqlite_path: Path | None = None
    url: str = ""                                  # PostgreSQL, without a password
    password: str | None = field(default=None, repr=False)

    def describe(self) -> str:
        """For logs and `check-config`: where the data is, never a secret."""
        return str(self.sqlite_path) if self.dialect == "sqlite" else self.url


def database_target(settings: Settings) -> DatabaseTarget:
    url = settings.storage.database_url
    scheme, _, rest = url.partition("://")
    if not url:
        return DatabaseTarget("sqlite", sqlite_path=database_path(settings))
    if scheme.lower() == "sqlite":
        # sqlite:///relative/file or sqlite:////absolute/file, as SQLAlchemy reads them
        return DatabaseTarget("sqlite", sqlite_path=Path(rest[1:]))
    password = None
    secret_file = settings.storage.database_password_file
    if secret_file is not None:
        try:
            password = secret_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ConfigError(msg("[storage] database_password_file: cannot read {path}: "
                                  "{problem}", path=str(secret_file),
                                  problem=exc.strerror)) from None
    return DatabaseTarget("postgresql", url="postgresql://" + rest, password=password)


def open_store(settings: Settings) -> Storage:
    """The store the settings name, not opened yet (`await store.open()`)."""
    target = database_target(settings)
    if target.dialect == "sqlite":
        assert target.sqlite_path is not None
        return Store(target.sqlite_path)
    from nexusmail.storage.pg_store import PgStore  # psycopg only when it is used

    return PgStore(target.url, password=target.password)

"""Run the real daemon (`nexusmail.daemon.serve`) inside the test's event loop.

Everything is real: SMTP and web on free loopback ports, the run's store (SQLite in a
temporary data dir, or the test's PostgreSQL database: `store_choice`), outgoing mail
through a relay the test provides (an aiosmtpd sink).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiosmtplib
import aiosqlite
import psycopg
from store_choice import database_url_for

from nexusmail.clock import Clock
from nexusmail.config import Settings
from nexusmail.daemon import Running, serve
from nexusmail.storage.postgresql import translate

SUPPORT = "support@firm.test"


def make_settings(data_dir: Path, *, relay_port: int | None = None, **sections: Any) -> Settings:
    return Settings.model_validate(make_config(data_dir, relay_port=relay_port, **sections))


def make_config(data_dir: Path, *, relay_port: int | None = None,
                **sections: Any) -> dict[str, dict[str, Any]]:
    """The raw sections of `make_settings`, e.g. to write as a config file to reload."""
    url = database_url_for(data_dir)
    raw: dict[str, Any] = {
        "storage": {"data_dir": str(data_dir), **({"database_url": url} if url else {})},
        "smtp": {"port": 0},
        "web": {"port": 0},
        "mail": {"support_addresses": [SUPPORT], "company_name": "Firm"},
        "outbound": {"host": "127.0.0.1", "port": relay_port, "retry_base_s": 0.2,
                     "poll_interval_s": 0.2} if relay_port else {},
        # A parse process costs ~0.5 s per daemon start; the tests that need it ask.
        "ingest": {"parse_processes": 0},
    }
    for name, values in sections.items():
        raw.setdefault(name, {}).update(values)
    return raw


def config_toml(config: dict[str, dict[str, Any]]) -> str:
    """Enough TOML for these configs: scalars and lists as JSON, lists of tables
    (`[[imap.accounts]]`) as tables."""
    out = []
    for name, values in config.items():
        out.append(f"[{name}]")
        tables = {k: v for k, v in values.items() if isinstance(v, list) and v
                  and isinstance(v[0], dict)}
        out += [f"{k} = {json.dumps(v)}" for k, v in values.items()
                if k not in tables and v is not None]
        for key, rows in tables.items():
            for row in rows:
                out.append(f"[[{name}.{key}]]")
                out += [f"{k} = {json.dumps(v)}" for k, v in row.items()]
    return "\n".join(out) + "\n"


@dataclass
class Daemon:
    settings: Settings
    running: Running
    stop: asyncio.Event
    task: asyncio.Task[None]
    reload: asyncio.Event  # set: re-read the config file, as SIGHUP does

    @property
    def smtp_port(self) -> int:
        return self.running.smtp_port

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self.running.web_port}"

    async def send(self, raw: bytes, *, sender: str = "customer@example.org",
                   recipients: list[str] | None = None) -> tuple[int, str]:
        """Send raw bytes over SMTP; return the final (code, message) of DATA."""
        client = aiosmtplib.SMTP(hostname="127.0.0.1", port=self.smtp_port, timeout=30)
        await client.connect()
        try:
            _errors, message = await client.sendmail(sender, recipients or [SUPPORT], raw)
            return 250, message
        except aiosmtplib.SMTPRecipientsRefused as exc:
            return exc.recipients[0].code, exc.recipients[0].message
        except aiosmtplib.SMTPResponseException as exc:
            return exc.code, exc.message
        finally:
            try:
                await client.quit()
            except aiosmtplib.SMTPException:
                client.close()

    async def query(self, sql: str, *params: Any) -> list[tuple[Any, ...]]:
        """Read the daemon's database through a separate connection (read-only on
        SQLite)."""
        url = self.settings.storage.database_url
        if url.startswith("postgres"):  # its own connection: works after the daemon stopped
            async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
                cursor = await conn.execute(translate(sql), params)
                return [tuple(row) for row in await cursor.fetchall()]
        path = self.settings.storage.data_dir / "nexusmail.sqlite3"
        async with aiosqlite.connect(f"file:{path}?mode=ro", uri=True) as conn:
            rows = await conn.execute_fetchall(sql, params)
        return [tuple(row) for row in rows]


@asynccontextmanager
async def running_daemon(settings: Settings, *, clock: Clock | None = None,
                         config_path: Path | None = None) -> AsyncIterator[Daemon]:
    stop, reload = asyncio.Event(), asyncio.Event()
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, clock=clock, stop=stop,
                                     on_ready=ready.set_result, config_path=config_path,
                                     reload=reload))
    done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
    if task in done:
        task.result()
    try:
        yield Daemon(settings, ready.result(), stop, task, reload)
    finally:
        stop.set()
        await asyncio.wait_for(task, 20)

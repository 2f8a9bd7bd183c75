"""SIGHUP: re-read the config file and apply what can change under a running daemon.

Live: the mail templates (a new jinja environment, so edited files and a new
`[mail] templates_dir` are used by the next mail composed), `[limits]` and `[imap]`
(the collector is restarted with the new accounts; UID checkpoints make that safe).
`[limits]` reaches every part through one `LiveSettings` holder that the reload swaps:
ingest, the SMTP size limit from the next connection on, the IMAP fetch size, the API
and the admin pages all read it where they use a value. Every other changed key is
named in the `daemon.reloaded` event as taking effect after a restart. A config that
does not load is logged with its error and the daemon keeps its settings.
`plan_reload` is the pure part; `Reloader` applies a plan to the running parts.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from pydantic import BaseModel

from nexusmail.clock import Clock
from nexusmail.config import ConfigError, Settings, load_settings
from nexusmail.dispatch.outbox_worker import OutboxWorker
from nexusmail.ingest.accept import Ingest
from nexusmail.ingest.imap.poller import ImapCollector
from nexusmail.live_settings import LiveSettings
from nexusmail.service.systemd_notify import notify, reloading_state

log = structlog.get_logger(__name__)

RESTART_NOTE = "changed, takes effect after restart"
# Sections applied live as a whole; from [mail] only templates_dir and the answer
# budgets and loop guard (read for each mail: an operator under a flood can tighten
# them with a reload) are (the addresses are baked into the SMTP handler, ingest and
# the outbox's envelope sender).
LIVE_SECTIONS = ("limits", "imap")
LIVE_MAIL_KEYS = ("templates_dir", "max_acks_per_hour", "max_acks_per_hour_per_domain",
                  "max_acks_per_hour_total", "mute_after_new_cases",
                  "mute_domain_after_new_cases", "mute_window_s")


@dataclass(frozen=True)
class ReloadPlan:
    settings: Settings              # the running settings with the live parts replaced
    reloaded: tuple[str, ...]       # what is applied now, e.g. "[limits] max_message_bytes"
    needs_restart: tuple[str, ...]  # changed keys the running daemon cannot apply
    restart_imap: bool              # the IMAP collector must start over


def plan_reload(old: Settings, new: Settings) -> ReloadPlan:
    """What a reload from `old` to `new` applies now and what waits for a restart."""
    # Templates are always re-read: their files change without a key changing.
    reloaded: list[str] = ["templates"]
    needs_restart: list[str] = []
    for section in Settings.model_fields:
        for key in _changed_keys(getattr(old, section), getattr(new, section)):
            live = section in LIVE_SECTIONS or (section == "mail" and key in LIVE_MAIL_KEYS)
            (reloaded if live else needs_restart).append(f"[{section}] {key}")
    mail = old.mail.model_copy(update={k: getattr(new.mail, k) for k in LIVE_MAIL_KEYS})
    applied = old.model_copy(
        update={"mail": mail, **{s: getattr(new, s) for s in LIVE_SECTIONS}})
    # Accounts and their connection settings are read when a collector is built.
    restart_imap = old.imap != new.imap
    return ReloadPlan(applied, tuple(reloaded), tuple(needs_restart), restart_imap)


def _changed_keys(old: BaseModel, new: BaseModel) -> list[str]:
    # SecretStr compares by its secret, so a new password counts as a change; only key
    # names ever reach the log.
    return [key for key in type(old).model_fields if getattr(old, key) != getattr(new, key)]


class CollectorSlot:
    """The IMAP collector of the moment; `replace` swaps in one with new accounts.

    The old collector stops as at shutdown (mails being accepted finish, IDLE ends),
    then the new one starts; the daemon's stop event still ends whichever runs.
    """

    def __init__(self, collector: ImapCollector) -> None:
        self.collector = collector
        self._next: ImapCollector | None = None
        self._own_stop = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            self._own_stop = asyncio.Event()
            relay = asyncio.create_task(_set_when(stop, self._own_stop))
            try:
                await self.collector.run(self._own_stop)
            finally:
                relay.cancel()
            if self._next is not None:
                self.collector, self._next = self._next, None

    def replace(self, collector: ImapCollector) -> None:
        self._next = collector  # a second reload before the swap: the newest wins
        self._own_stop.set()

    def states(self) -> dict[str, dict[str, Any]]:
        return self.collector.states()


async def _set_when(stop: asyncio.Event, target: asyncio.Event) -> None:
    await stop.wait()
    target.set()


class Reloader:
    """Waits for reload requests (SIGHUP) and applies them to the running parts."""

    def __init__(self, config_path: Path | None, settings: LiveSettings, *, ingest: Ingest,
                 worker: OutboxWorker, collector: CollectorSlot, clock: Clock,
                 status: str) -> None:
        self.config_path = config_path
        self.settings = settings
        self.ingest = ingest
        self.worker = worker
        self.collector = collector
        self.clock = clock
        self.status = status  # systemd STATUS= line sent with READY=1

    async def run(self, stop: asyncio.Event, requests: asyncio.Event) -> None:
        while await _first_of(stop, requests) is requests:
            requests.clear()  # signals during a reload fold into one more reload
            notify(reloading_state())
            try:
                outcome = await self.reload()
            except Exception:  # a bug here must not take the running daemon down
                log.exception("daemon.reload_crashed")
                outcome = "reload failed, running on the previous settings"
            notify(f"READY=1\nSTATUS={self.status} ({outcome})")

    async def reload(self) -> str:
        """Apply the config file now; return a few words for systemd's status line."""
        source = str(self.config_path) if self.config_path else "embedded defaults"
        try:
            new = await asyncio.to_thread(_load, self.config_path)
        except (ConfigError, OSError, ValueError) as exc:
            log.error("daemon.reload_failed", config=source, error=str(exc),
                      kept="the running settings")
            return "reload failed, running on the previous settings"
        plan = plan_reload(self.settings.current, new)
        await self.worker.reload_templates(plan.settings.mail)
        self.settings.swap(plan.settings)
        if plan.restart_imap:
            running = self.collector.collector
            self.collector.replace(ImapCollector(plan.settings, self.ingest, self.clock,
                                                 owner=running.owner,
                                                 live_daemons=running.live_daemons))
        log.info("daemon.reloaded", config=source, reloaded=list(plan.reloaded),
                 needs_restart=list(plan.needs_restart),
                 note=RESTART_NOTE if plan.needs_restart else None,
                 imap_restarted=plan.restart_imap)
        return "reloaded" + (f"; {len(plan.needs_restart)} changes need a restart"
                             if plan.needs_restart else "")


def _load(path: Path | None) -> Settings:
    """load_settings, plus what it leaves to first use: a templates_dir that is gone
    would silently fall back to the packaged templates."""
    settings = load_settings(path)
    templates_dir = settings.mail.templates_dir
    if templates_dir is not None and not templates_dir.is_dir():
        raise ConfigError(f"[mail] templates_dir: {str(templates_dir)!r} is not a directory")
    return settings


async def _first_of(*events: asyncio.Event) -> asyncio.Event:
    """The first of `events` to be set (the earliest listed when several already are)."""
    waiters = {asyncio.create_task(event.wait()): event for event in events}
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
    return next(event for event in events if event.is_set())

"""`nexusmail run`: builds every part, starts them, stops them in order.

One lifecycle owner: the store, the outbox worker, the parse workers, the SMTP/LMTP
listener, IMAP collection, the scheduler and the web server live in one AsyncExitStack.
SIGTERM/SIGINT set the stop event, SIGHUP a reload (nexusmail.service.reload); systemd
hears of each step (systemd_notify).

The stop event tells every task at once; the stack then closes in reverse order of
start, each step bounded by DRAIN_TIMEOUT_S: the watchdog and reload tasks, the web
server, the scheduler, IMAP collection, then the SMTP listener stops taking connections
and the mail in flight finishes, then the parse workers, the outbox worker (so mail
queued by that last mail is still committed, and sent on the next start if not now),
the transport, and the store last.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import time
from collections.abc import Callable, Coroutine, Generator
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import structlog
import uvicorn
from starlette.applications import Starlette

from nexusmail import __version__
from nexusmail.admin.api.routes import ApiServices, api_routes
from nexusmail.admin.pages.routes import page_routes
from nexusmail.blobs.open import open_reachable_blob_store
from nexusmail.clock import Clock, SystemClock
from nexusmail.config import Settings
from nexusmail.config_warnings import config_warnings
from nexusmail.dispatch.compose import Composer
from nexusmail.dispatch.outbox_worker import OutboxWorker
from nexusmail.dispatch.transport import build_transport
from nexusmail.ingest.accept import Ingest
from nexusmail.ingest.imap.poller import ImapCollector
from nexusmail.ingest.imap.share import live_daemons_of
from nexusmail.ingest.parse_workers import ParseWorkers
from nexusmail.ingest.smtp_handler import SmtpHandler
from nexusmail.ingest.smtp_server import start_listener
from nexusmail.live_settings import LiveSettings
from nexusmail.logs import configure_logging
from nexusmail.service import systemd_notify
from nexusmail.service.heartbeat import Heartbeat
from nexusmail.service.malloc_tuning import fix_mmap_threshold
from nexusmail.service.metrics import Metrics
from nexusmail.service.ports import check_listen_ports, claim
from nexusmail.service.predecessors import hold_life_lock, take_over_dead_predecessors
from nexusmail.service.readiness import Probes
from nexusmail.service.reload import CollectorSlot, Reloader
from nexusmail.storage.connections import Storage, dialect_of
from nexusmail.storage.target import open_store
from nexusmail.tickets.deadline_sweep import DeadlineSweep
from nexusmail.tickets.reply_tokens import load_reply_keys
from nexusmail.tickets.scheduler import Scheduler
from nexusmail.tickets.search_indexer import SearchIndexer
from nexusmail.tickets.sequence_sweep import SequenceSweep

log = structlog.get_logger(__name__)

DRAIN_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Running:
    """What a started daemon listens on (ports are real even when 0 was configured)."""

    smtp_port: int
    web_port: int
    store: Storage = field(repr=False)  # for the operator CLI and tests' fault injection


class _EmbeddedUvicorn(uvicorn.Server):
    """uvicorn inside our loop: the daemon, not uvicorn, owns the signals."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


async def serve(
    settings: Settings,
    *,
    clock: Clock | None = None,
    stop: asyncio.Event | None = None,
    on_ready: Callable[[Running], None] = lambda running: None,
    config_path: Path | None = None,
    reload: asyncio.Event | None = None,
) -> None:
    """Run until `stop` is set; each time `reload` is set, re-read `config_path`."""
    clock = clock or SystemClock()
    stop = stop or asyncio.Event()
    started = time.monotonic()
    check_listen_ports(settings)
    fix_mmap_threshold()  # large mails' memory is given back once they are stored
    async with AsyncExitStack() as stack:
        store = open_store(settings)
        # Opening applies the migrations an upgrade brings; some copy a whole table.
        await systemd_notify.extending_start(store.open(), "opening the store (migrations)")
        stack.push_async_callback(store.close)
        blobs = await open_reachable_blob_store(settings)
        stack.callback(blobs.close)

        transport = build_transport(settings.outbound, settings.storage.data_dir)
        stack.push_async_callback(transport.close)
        metrics = Metrics()  # this daemon's own registry: two daemons in one process never mix
        worker = OutboxWorker(store, transport, Composer(settings.mail, blob_loader=blobs.get),
                              clock, settings.outbound,
                              envelope_sender=settings.mail.support_addresses[0],
                              metrics=metrics)
        # A crashed predecessor on this machine: its claims and leases are free now.
        await take_over_dead_predecessors(store, settings.storage.data_dir, clock.now())
        stack.callback(hold_life_lock(settings.storage.data_dir, worker.worker_id).release)
        # This process's fresh identity among the daemons sharing the store.
        beat = Heartbeat(store, clock, worker.worker_id,
                         interval_s=settings.outbound.lease_s / 3)
        await beat.beat()
        _start_task(stack, beat.run(stop), "heartbeat")
        worker_task = asyncio.create_task(worker.run(stop), name="outbox")
        stack.push_async_callback(_await_task, worker_task, "outbox")

        reply_keys = await asyncio.to_thread(load_reply_keys, settings)
        parsers = None
        if settings.ingest.parse_processes:
            parsers = ParseWorkers(settings.ingest.parse_processes,
                                   preload=("nexusmail.ingest.prepare",))
            stack.push_async_callback(parsers.close)
            await parsers.start()
        # One holder of the settings of the moment, read by every part; reload swaps it.
        current = LiveSettings(settings)
        ingest = Ingest(store, blobs, current, clock, parsers=parsers,
                        on_outbox=worker.notify, reply_keys=reply_keys, metrics=metrics)
        worker.yield_to_ingest(ingest.idle)
        if dialect_of(store) == "postgresql":  # SQLite's search index is kept by its writer
            indexer = SearchIndexer(store, clock, ingest=ingest)
            _start_task(stack, indexer.run(stop), "search-index")
        smtp_server = await _start_smtp(settings, ingest)
        stack.push_async_callback(_drain_smtp, smtp_server, ingest)
        # IMAP folders are leased in this daemon's name, shared among the live daemons.
        collector = CollectorSlot(ImapCollector(
            settings, ingest, clock, owner=worker.worker_id,
            live_daemons=live_daemons_of(store, clock, settings.outbound.lease_s)))
        collector_task = asyncio.create_task(collector.run(stop), name="imap")
        stack.push_async_callback(_await_task, collector_task, "imap")

        scheduler = Scheduler(store, current, clock, reply_keys=reply_keys,
                              on_outbox=worker.notify, metrics=metrics)
        scheduler_task = asyncio.create_task(scheduler.run(stop), name="scheduler")
        stack.push_async_callback(_await_task, scheduler_task, "scheduler")
        sweep = DeadlineSweep(store, current, clock, on_outbox=worker.notify)
        sweep_task = asyncio.create_task(sweep.run(stop), name="deadlines")
        stack.push_async_callback(_await_task, sweep_task, "deadlines")
        steps = SequenceSweep(store, current, clock, reply_keys=reply_keys,
                              on_outbox=worker.notify)
        steps_task = asyncio.create_task(steps.run(stop), name="sequences")
        stack.push_async_callback(_await_task, steps_task, "sequences")

        web_server, web_task, web_port = await _start_web(settings, ApiServices(
            store=store, blobs=blobs, live_settings=current, clock=clock, on_outbox=worker.notify,
            reply_keys=reply_keys, health_details=lambda: {"imap": collector.states(),
                                                              "cluster": beat.details()},
            metrics=metrics, probes=Probes(smtp_listening=smtp_server.is_serving,
                                           scheduler_last_tick=lambda: scheduler.last_tick,
                                           started_at=clock.now()),
            ingest=ingest))
        stack.push_async_callback(_stop_web, web_server, web_task)

        running = Running(smtp_port=smtp_server.sockets[0].getsockname()[1], web_port=web_port,
                          store=store)
        log.info("daemon.started", version=__version__, smtp_port=running.smtp_port,
                 smtp_protocol=settings.smtp.protocol, web_port=running.web_port,
                 data_dir=str(settings.storage.data_dir),
                 outbound=settings.outbound.host or "maildir")
        for warning in config_warnings(settings):
            log.warning("config.warning", key=warning.key, problem=warning.message)
        on_ready(running)
        status = f"serving: SMTP on port {running.smtp_port}, web on port {running.web_port}"
        systemd_notify.notify(f"READY=1\nSTATUS={status}")
        reloader = Reloader(config_path, current, ingest=ingest, worker=worker,
                            collector=collector, clock=clock, status=status)
        _start_task(stack, reloader.run(stop, reload or asyncio.Event()), "reload")
        watchdog_s = systemd_notify.watchdog_interval_s()
        if watchdog_s is not None:  # the ping also proves the store's writer answers
            _start_task(stack, systemd_notify.feed_watchdog(
                stop, watchdog_s, check=partial(store.write, _no_change)), "watchdog")
        await stop.wait()
        systemd_notify.notify("STOPPING=1")
        log.info("daemon.stopping")
    log.info("daemon.stopped", uptime_s=round(time.monotonic() - started, 1),
             mails_accepted=ingest.accepted)


async def _start_smtp(settings: Settings, ingest: Ingest) -> asyncio.Server:
    handler = SmtpHandler(ingest, settings.mail.support_addresses,
                          source=settings.smtp.protocol, lmtp=settings.smtp.protocol == "lmtp",
                          metrics=ingest.metrics, max_recipients=settings.smtp.max_recipients)
    return await start_listener(settings, handler)


async def _drain_smtp(server: asyncio.Server, ingest: Ingest) -> None:
    server.close()  # no new connections; sessions in DATA finish below
    if not await ingest.drain(DRAIN_TIMEOUT_S):
        log.warning("daemon.drain_timeout", in_flight=ingest.in_flight)


async def _start_web(
    settings: Settings, services: ApiServices
) -> tuple[uvicorn.Server, asyncio.Task[None], int]:
    app = Starlette(routes=[*api_routes(services), *page_routes(services)])
    sock = claim("[web] port", settings.web.host, settings.web.port)
    # Accepted sockets inherit this: without it a response written in two pieces waits
    # for the client's delayed ACK (40 ms on Linux) before its second piece leaves.
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.listen(128)
    sock.setblocking(False)
    proxies = list(settings.web.trusted_proxies)
    config = uvicorn.Config(app, lifespan="off", log_config=None, access_log=False,
                            server_header=False, proxy_headers=bool(proxies),
                            forwarded_allow_ips=proxies or None)
    server = _EmbeddedUvicorn(config)
    task = asyncio.create_task(server.serve(sockets=[sock]), name="web")
    while not server.started:
        if task.done():
            task.result()  # raises what stopped it
        await asyncio.sleep(0.01)
    return server, task, int(sock.getsockname()[1])


async def _stop_web(server: uvicorn.Server, task: asyncio.Task[None]) -> None:
    server.should_exit = True
    try:
        await asyncio.wait_for(task, DRAIN_TIMEOUT_S)
    except TimeoutError:
        task.cancel()


def _start_task(stack: AsyncExitStack, coro: Coroutine[Any, Any, None], name: str) -> None:
    task = asyncio.create_task(coro, name=name)
    stack.push_async_callback(_await_task, task, name)


def _no_change(conn: object) -> None:
    """An empty unit for the store's writer: it answers, so it is not stuck."""


async def _await_task(task: asyncio.Task[None], name: str) -> None:
    try:
        await asyncio.wait_for(task, DRAIN_TIMEOUT_S)
    except TimeoutError:
        log.warning("daemon.task_cancelled", task=name)
        task.cancel()


def run_daemon(settings: Settings, *, config_path: Path | None = None) -> int:
    """The blocking entry point: logging, signals, the loop."""
    configure_logging(settings.log.level, settings.log.format)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        reload = asyncio.Event()
        loop.add_signal_handler(signal.SIGHUP, reload.set)
        await serve(settings, stop=stop, config_path=config_path, reload=reload)

    try:
        asyncio.run(main())
    except OSError as exc:  # e.g. the port is taken
        log.error("daemon.failed", error=str(exc))
        return 1
    return 0

"""Service schedules through the real daemon with an injected clock: the scheduler task
ticks every [scheduler] interval_s (0.1 s here), the API creates and pauses, the outbox
sends the assignment mail to a real SMTP sink, and a restart opens nothing twice."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from daemon_harness import Daemon, make_settings, running_daemon
from smtp_sink import CaptureHandler, start_sink
from structlog.testing import capture_logs

from nexusmail.admin.tokens import create_token
from nexusmail.clock import FakeClock
from nexusmail.tickets.cases import add_employee

MARCO = "marco.bianchi@firm.test"
START = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)   # 10:00 in Rome


@pytest.fixture
async def sink() -> AsyncIterator[tuple[CaptureHandler, int]]:
    handler = CaptureHandler()
    controller = start_sink(handler)
    try:
        yield handler, controller.port
    finally:
        await asyncio.to_thread(controller.stop)


async def eventually(check: Callable[[], Awaitable[bool]], within_s: float = 5.0) -> None:
    for _ in range(int(within_s / 0.02)):
        if await check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the condition did not come true in time")


async def ticks_after(logs: list[dict[str, Any]], n: int) -> None:
    """Wait until `n` more scheduler ticks have completed."""
    target = sum(e["event"] == "schedule.tick" for e in logs) + n

    async def enough() -> bool:
        return sum(e["event"] == "schedule.tick" for e in logs) >= target

    await eventually(enough)


async def count(daemon: Daemon, sql: str) -> int:
    [(value,)] = await daemon.query(sql)
    return int(value)


def client(daemon: Daemon, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=daemon.web_url,
                             headers={"Authorization": f"Bearer {token}"})


async def test_schedule_opens_once_across_ticks_restart_and_downtime(
        tmp_path: Path, sink: tuple[CaptureHandler, int]) -> None:
    """One case and mail per occurrence across ticks, a restart, downtime (late) and pause."""
    mails, port = sink
    settings = make_settings(tmp_path, relay_port=port, scheduler={"interval_s": 0.1})
    clock = FakeClock(START)
    with capture_logs() as logs:
        async with running_daemon(settings, clock=clock) as daemon:
            store = daemon.running.store
            token = await store.write(lambda tx: create_token(tx, "tests", clock.now()))
            await store.write(lambda tx: add_employee(
                tx, email=MARCO, name="Marco Bianchi", language="it", now=clock.now()))
            async with client(daemon, token) as api:
                created = await api.post("/api/v1/schedules", json={
                    "customer_email": "condominio@example.it", "subject": "Manutenzione caldaia",
                    "interval": "monthly", "first_date": "2026-03-05", "lead_days": 3,
                    "assignees": [MARCO]})
                assert created.status_code == 201, created.text
                schedule_url = f"/api/v1/schedules/{created.json()['id']}"

                async def opened() -> bool:
                    return await count(daemon, "SELECT count(*) FROM interventions") == 1

                await eventually(opened)
                [mail] = await mails.wait_for_async(1)
                assert mail.rcpt_tos == [MARCO]
                assert "Manutenzione caldaia (2026-03-05)" in str(mail.message()["Subject"])
                await ticks_after(logs, 2)
                assert await count(daemon, "SELECT count(*) FROM interventions") == 1
                # A tick every minute: only the ones that did something are worth info.
                levels = {(e["log_level"], e["opened"] > 0) for e in logs
                          if e["event"] == "schedule.tick"}
                assert levels == {("info", True), ("debug", False)}

        async with running_daemon(settings, clock=clock) as daemon:       # restart
            await ticks_after(logs, 2)
            assert await count(daemon, "SELECT count(*) FROM interventions") == 1

        clock.advance(timedelta(days=63))                                # down until 4 May
        async with running_daemon(settings, clock=clock) as daemon:

            async def caught_up() -> bool:
                return await count(daemon, "SELECT count(*) FROM interventions") == 3

            await eventually(caught_up)
            assert await daemon.query(
                "SELECT occurrence_on, outcome, late FROM schedule_occurrences"
                " ORDER BY occurrence_on") == [
                ("2026-03-05", "opened", 0), ("2026-04-05", "opened", 1),
                ("2026-05-05", "opened", 1)]
            late = [e for e in logs if e["event"] == "schedule.opened" and e["late"]]
            assert [e["occurrence"] for e in late] == ["2026-04-05", "2026-05-05"]
            async with client(daemon, token) as api:
                paused = await api.patch(schedule_url, json={"active": False})
                assert paused.status_code == 200, paused.text
                clock.advance(timedelta(days=40))                        # 13 June
                await ticks_after(logs, 2)
                assert await count(daemon, "SELECT count(*) FROM interventions") == 3
            await mails.wait_for_async(3)                                 # one per opening


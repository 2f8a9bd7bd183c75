"""Time from a technician reply's SMTP 250 to its state change being visible in the API.

Runs the real daemon in this process (SMTP and web on loopback), a real aiosmtpd sink
for what it sends, opens N interventions each assigned to one technician, then replies
CONFERMO to each assignment mail and polls GET /api/v1/interventions/{n} until the
assignment shows "confirmed". Prints p50/p95/max, the machine and the command.

    python bench/reply_latency.py [--cases 100]
"""

from __future__ import annotations

import argparse
import asyncio
import email
import email.policy
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from email.message import EmailMessage
from functools import partial
from pathlib import Path
from typing import Any

import aiosmtplib
import httpx
from aiosmtpd.controller import Controller
from machine import cpu_model

from nexusmail.admin.tokens import create_token
from nexusmail.clock import SystemClock
from nexusmail.config import Settings
from nexusmail.daemon import Running, serve
from nexusmail.tickets.assignments import assign
from nexusmail.tickets.cases import add_employee
from nexusmail.tickets.models import Source
from nexusmail.tickets.new_requests import OpenRequest, open_request
from nexusmail.tickets.reply_tokens import load_reply_keys

SUPPORT = "support@firm.test"
TECH = "luca@firm.test"


class Sink:
    def __init__(self) -> None:
        self.mails: list[bytes] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self.lock:
            self.mails.append(envelope.original_content or envelope.content)
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def run(cases: int) -> list[float]:
    sink = Sink()
    relay = Controller(sink, hostname="127.0.0.1", port=free_port())
    relay.start()
    data_dir = Path(tempfile.mkdtemp(prefix="nm-bench-reply-"))
    settings = Settings.model_validate({
        "storage": {"data_dir": str(data_dir)}, "smtp": {"port": 0}, "web": {"port": 0},
        "mail": {"support_addresses": [SUPPORT]}, "log": {"level": "error"},
        "outbound": {"host": "127.0.0.1", "port": relay.port, "poll_interval_s": 0.2},
    })
    stop = asyncio.Event()
    ready: asyncio.Future[Running] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(serve(settings, stop=stop, on_ready=ready.set_result))
    running = await ready
    try:
        store, now = running.store, SystemClock().now()
        keys = load_reply_keys(settings)
        token = await store.write(partial(create_token, name="bench", now=now))
        await store.write(partial(add_employee, email=TECH, name="Luca", language="it", now=now))

        def open_and_assign(tx: Any) -> None:
            for i in range(cases):
                number = open_request(tx, OpenRequest(
                    customer_email=f"c{i}@example.it", customer_name="", subject=f"Caso {i}",
                    description="Caldaia in blocco", source=Source.API), now=now,
                    settings=settings)
                assign(tx, number, TECH, now=now, settings=settings, reply_keys=keys)

        await store.write(open_and_assign)
        while len(sink.mails) < 2 * cases:  # noqa: ASYNC110 - the sink lives in a thread
            await asyncio.sleep(0.05)
        assignments = [m for m in (email.message_from_bytes(raw, policy=email.policy.default)
                                   for raw in sink.mails) if m["To"] == TECH]
        latencies = []
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=running.smtp_port)
        await smtp.connect()
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{running.web_port}/api/v1",
                                     headers={"Authorization": f"Bearer {token}"}) as api:
            for original in assignments:
                number = int(str(original["Subject"]).split("[#")[1].split("]")[0])
                reply = EmailMessage()
                reply["From"], reply["To"] = TECH, original["Reply-To"]
                reply["Subject"] = "Re: " + str(original["Subject"])
                reply["In-Reply-To"] = original["Message-ID"]
                reply.set_content("Confermo, passo domani.\n\n> quoted")
                await smtp.sendmail(TECH, [str(original["Reply-To"])], reply.as_bytes())
                accepted = time.perf_counter()
                while True:
                    data = (await api.get(f"/interventions/{number}")).json()
                    if data["assignments"][0]["status"] == "confirmed":
                        break
                latencies.append((time.perf_counter() - accepted) * 1000)
        await smtp.quit()
        return latencies
    finally:
        stop.set()
        await task
        relay.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=100)
    args = parser.parse_args()
    latencies = asyncio.run(run(args.cases))
    cpu = cpu_model()
    quantiles = statistics.quantiles(latencies, n=100)
    print(f"machine: {os.cpu_count()} cores, {cpu}, Python {platform.python_version()}")
    print(f"command: python bench/{Path(sys.argv[0]).name} --cases {args.cases}")
    print(f"reply 250 -> state visible in the API, over {len(latencies)} replies: "
          f"p50 {statistics.median(latencies):.1f} ms, p95 {quantiles[94]:.1f} ms, "
          f"max {max(latencies):.1f} ms")


if __name__ == "__main__":
    main()

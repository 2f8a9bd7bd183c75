"""Relay stand-in that receives the daemon's acknowledgements and counts them.

Runs in its own process so its CPU is not charged to the daemon. The count is kept in
a small JSON file (rewritten atomically a few times a second) that the harness polls
to know when the outbox has drained.

    python bench/sink.py --port 0 --count-file out/sink.json
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiosmtpd.smtp import SMTP

FLUSH_INTERVAL_S = 0.1


class CountingSink:
    """Accepts every message; remembers how many and for how many recipients."""

    def __init__(self) -> None:
        self.messages = 0
        self.recipients = 0
        self.bytes = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages += 1
        self.recipients += len(envelope.rcpt_tos)
        self.bytes += len(envelope.original_content or b"")
        return "250 OK"

    def as_dict(self) -> dict[str, int]:
        return {"messages": self.messages, "recipients": self.recipients, "bytes": self.bytes}


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


async def _flush_counts(sink: CountingSink, path: Path, stop: asyncio.Event) -> None:
    written: dict[str, int] | None = None
    while True:
        current = sink.as_dict()
        if current != written:
            await asyncio.to_thread(_write_atomically, path, json.dumps(current))
            written = current
        if stop.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=FLUSH_INTERVAL_S)


async def serve(host: str, port: int, count_file: Path) -> int:
    sink = CountingSink()
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: SMTP(sink, data_size_limit=None, decode_data=False, hostname="sink.localhost"),
        host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    flusher = asyncio.create_task(_flush_counts(sink, count_file, stop))
    bound_port = server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "sink.started", "host": host, "port": bound_port}), flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    await flusher
    print(json.dumps({"event": "sink.stopped", **sink.as_dict()}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument("--count-file", type=Path, required=True)
    args = parser.parse_args(argv)
    return asyncio.run(serve(args.host, args.port, args.count_file))


if __name__ == "__main__":
    sys.exit(main())

"""Baseline for the ingest benchmark: a stock aiosmtpd server that says 250 at once.

Same SIZE limit and decode_data as the daemon, no storage, no parsing: whatever
nexusmail does beyond this is the cost of doing the real work.

    python bench/stock_server.py --port 0     # prints {"event": "stock.started", "port": N}
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from aiosmtpd.smtp import SMTP

# The daemon's default [limits] max_message_bytes.
DATA_SIZE_LIMIT = 25 * 1024 * 1024


class AcceptAll:
    """Answers DATA with 250 without looking at the message."""

    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += 1
        return "250 OK"


async def serve(host: str, port: int) -> int:
    handler = AcceptAll()
    loop = asyncio.get_running_loop()
    # hostname given, so aiosmtpd does not call socket.getfqdn() for every connection.
    server = await loop.create_server(
        lambda: SMTP(handler, data_size_limit=DATA_SIZE_LIMIT, decode_data=False,
                     hostname="stock.localhost"),
        host, port)
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    bound_port = server.sockets[0].getsockname()[1]
    print(json.dumps({"event": "stock.started", "host": host, "port": bound_port}), flush=True)
    await stop.wait()
    server.close()
    await server.wait_closed()
    print(json.dumps({"event": "stock.stopped", "accepted": handler.accepted}), flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    args = parser.parse_args(argv)
    return asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    sys.exit(main())

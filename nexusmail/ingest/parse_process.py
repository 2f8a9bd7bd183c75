"""One parse worker process: reads (function, arguments) pickles from its socket, runs
them and writes the answers back, in order, until end of input.

`parse_workers.ParseWorkers` starts it as ``python -m nexusmail.ingest.parse_process FD
[MODULE ...]``, FD being its end of a socket pair, each MODULE imported first (the
warm-up). A plain child process rather than a multiprocessing one: no forkserver and
no resource tracker beside the daemon, and no re-import of the daemon's `__main__`
(which loaded the whole CLI, web stack included, into every worker: 57 MB peak RSS in
the ingest benchmark). For the same reason this module imports only the standard
library; a job's module is imported when its function is unpickled.
"""

from __future__ import annotations

import contextlib
import importlib
import pickle
import signal
import socket
import struct
import sys
from typing import Any

HEADER = struct.Struct("!Q")  # the length of the pickle that follows


def ready() -> bool:
    """A no-op job: answered once the worker is up and warmed."""
    return True


def serve(sock: socket.socket) -> None:
    """Read a job, run it, answer; return at end of input."""
    with sock, sock.makefile("rb") as stream, contextlib.suppress(ConnectionError):
        while True:
            header = stream.read(HEADER.size)
            if len(header) < HEADER.size:
                return
            (size,) = HEADER.unpack(header)
            fn, args = pickle.loads(stream.read(size))  # noqa: S301 (from our parent)
            try:
                answer: tuple[bool, Any] = (True, fn(*args))
            except Exception as exc:  # the caller decides; this loop must go on
                answer = (False, exc)
            try:
                data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                data = pickle.dumps((False, RuntimeError(f"answer does not pickle: {exc!r}")))
            sock.sendall(HEADER.pack(len(data)) + data)


def main(argv: list[str]) -> int:
    # The daemon stops its workers by closing their sockets once mail in flight is
    # parsed; a SIGINT/SIGTERM sent to the whole process group must not cut that short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    fd, *modules = argv
    for name in modules:
        importlib.import_module(name)
    serve(socket.socket(fileno=int(fd)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

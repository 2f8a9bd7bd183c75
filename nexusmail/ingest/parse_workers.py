"""Parse processes fed by the event loop itself: mail bytes out, parsed mail back.

Parsing is the largest CPU cost per mail; in another process it runs on another core
instead of holding the GIL the event loop and the store's writer need. A
ProcessPoolExecutor did that with two helper threads in the daemon (a manager and a
queue feeder) that pickle, wake each other and wake the loop for every job: ~0.34 ms
of the daemon's CPU per mail in the ingest benchmark. Here each worker has a socket
pair; the loop writes length-prefixed pickles and reads the answers, in order, as
they come (~0.1 ms per job).

A worker that dies (killed, out of memory, a crash in a C extension) fails the jobs it
had (ingest quarantines those mails) and is started again for the next job.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import pickle
import signal
import socket
import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

import structlog

log = structlog.get_logger(__name__)

T = TypeVar("T")

_HEADER = struct.Struct("!Q")  # the length of the pickle that follows
_STOP_TIMEOUT_S = 5.0
# Jobs handed to one worker at a time: enough that it never waits for the loop, few
# enough that the others wait as the caller's bytes, not as pickled copies in a socket
# buffer (with every job written at once the daemon's peak RSS grew by ~4 MB at 32
# connections; with 2 the worker sometimes waited on a busy loop).
_AHEAD_PER_WORKER = 4


class WorkerLost(Exception):
    """The parse process died before it answered."""


@dataclass
class _Worker:
    process: BaseProcess
    writer: asyncio.StreamWriter
    pending: deque[asyncio.Future[Any]] = field(default_factory=deque)
    reading: asyncio.Task[None] | None = None
    alive: bool = True


class ParseWorkers:
    """`processes` worker processes (forkserver); `run(fn, *args)` in the least busy one.

    `fn`, its arguments and its result must pickle; `fn` runs in the worker, so it must
    be a module-level function. `warm_up` runs once in each new worker (imports).
    """

    def __init__(self, processes: int, *, warm_up: Callable[[], None] | None = None) -> None:
        if processes < 1:
            raise ValueError("ParseWorkers needs at least one process")
        # forkserver, not fork: forking a process that runs threads (the store's writer)
        # can copy a held lock into the child.
        self._context = multiprocessing.get_context("forkserver")
        self._warm_up = warm_up
        self._slots: list[_Worker | None] = [None] * processes
        self._starting: list[asyncio.Task[_Worker] | None] = [None] * processes
        self._closed = False
        self._ahead = asyncio.Semaphore(_AHEAD_PER_WORKER * processes)

    async def start(self) -> None:
        """Start every worker now (warmed up, answering) rather than on the first mail."""
        workers = await asyncio.gather(*(self._worker(i) for i in range(len(self._slots))))
        await asyncio.gather(*(self._call(worker, _ready, ()) for worker in workers))

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        async with self._ahead:
            if self._closed:
                raise WorkerLost("the parse workers are closed")
            return await self._call(await self._worker(self._least_busy()), fn, args)

    async def _call(self, worker: _Worker, fn: Callable[..., T], args: tuple[Any, ...]) -> T:
        data = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        worker.pending.append(future)
        worker.writer.write(_HEADER.pack(len(data)) + data)
        try:
            with contextlib.suppress(ConnectionError):  # the reader fails the future
                await worker.writer.drain()
            return await future
        except asyncio.CancelledError:
            future.cancel()  # its answer, when it comes, is dropped
            raise

    async def close(self) -> None:
        """Let each worker finish what it has, then stop it (killed after a time limit)."""
        self._closed = True
        for starting in self._starting:
            if starting is not None:
                with contextlib.suppress(Exception):
                    await starting
        workers = [w for w in self._slots if w is not None]
        for worker in workers:
            if worker.alive and worker.writer.can_write_eof():
                # End of input: the worker answers what it has, then returns.
                with contextlib.suppress(ConnectionError):
                    worker.writer.write_eof()
            else:
                worker.writer.close()
        for worker in workers:
            if worker.reading is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.shield(worker.reading), _STOP_TIMEOUT_S)
            await asyncio.to_thread(worker.process.join, _STOP_TIMEOUT_S)
            if worker.process.is_alive():
                worker.process.kill()
                await asyncio.to_thread(worker.process.join)
            if worker.reading is not None:
                worker.reading.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await worker.reading

    def _least_busy(self) -> int:
        def load(index: int) -> int:
            worker = self._slots[index]
            return len(worker.pending) if worker is not None and worker.alive else 0
        return min(range(len(self._slots)), key=load)

    async def _worker(self, index: int) -> _Worker:
        worker = self._slots[index]
        if worker is not None and worker.alive:
            return worker
        starting = self._starting[index]
        if starting is None:  # one start per slot, however many jobs are waiting for it
            starting = asyncio.create_task(self._start_worker(index))
            self._starting[index] = starting
        try:
            return await asyncio.shield(starting)
        finally:
            if starting.done():
                self._starting[index] = None

    async def _start_worker(self, index: int) -> _Worker:
        ours, theirs = socket.socketpair()
        process = self._context.Process(target=_serve, args=(theirs, self._warm_up),
                                        name=f"nexusmail-parse-{index}", daemon=True)
        try:
            await asyncio.to_thread(process.start)
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = _Worker(process, writer)
        worker.reading = asyncio.create_task(self._read_answers(worker, reader),
                                             name=f"parse-{index}-answers")
        self._slots[index] = worker
        log.debug("parse_worker.started", pid=process.pid)
        return worker

    async def _read_answers(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                (size,) = _HEADER.unpack(await reader.readexactly(_HEADER.size))
                # Our own child over a private socket pair, as multiprocessing does.
                ok, value = pickle.loads(await reader.readexactly(size))  # noqa: S301
                future = worker.pending.popleft()
                if future.done():
                    continue  # cancelled while the worker was at it
                if ok:
                    future.set_result(value)
                else:
                    future.set_exception(value)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the worker exited or died: below
        finally:
            worker.alive = False
            lost = [f for f in worker.pending if not f.done()]
            worker.pending.clear()
            if lost or not self._closed:
                log.warning("parse_worker.lost", pid=worker.process.pid, jobs=len(lost))
            for future in lost:
                future.set_exception(WorkerLost(f"parse process {worker.process.pid} died"))
            worker.writer.close()


def _ready() -> bool:
    return True


def _serve(sock: socket.socket, warm_up: Callable[[], None] | None) -> None:
    """The worker's loop: read a job, run it, answer; return at end of input."""
    # The daemon stops its workers by closing their sockets once mail in flight is
    # parsed; a SIGINT/SIGTERM sent to the whole process group must not cut that short.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    if warm_up is not None:
        warm_up()
    with sock, sock.makefile("rb") as stream, contextlib.suppress(ConnectionError):
        while True:
            header = stream.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return
            (size,) = _HEADER.unpack(header)
            fn, args = pickle.loads(stream.read(size))  # noqa: S301 (from our parent)
            try:
                answer: tuple[bool, Any] = (True, fn(*args))
            except Exception as exc:  # the caller decides; this loop must go on
                answer = (False, exc)
            try:
                data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
            except Exception as exc:
                data = pickle.dumps((False, RuntimeError(f"answer does not pickle: {exc!r}")))
            sock.sendall(_HEADER.pack(len(data)) + data)

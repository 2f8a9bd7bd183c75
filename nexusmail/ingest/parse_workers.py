"""Parse processes fed by the event loop itself: mail bytes out, parsed mail back.

Parsing is the largest CPU cost per mail; in another process it runs on another core
instead of holding the GIL the event loop and the store's writer need. A
ProcessPoolExecutor did that with two helper threads in the daemon (a manager and a
queue feeder) that pickle, wake each other and wake the loop for every job: ~0.34 ms
of the daemon's CPU per mail in the ingest benchmark. Here each worker has a socket
pair; the loop writes length-prefixed pickles and reads the answers, in order, as
they come (~0.1 ms per job).

A worker that dies (killed, out of memory, a crash in a C extension) fails the jobs it
had (ingest quarantines those mails) and is started again for the next job. The
worker's side is `parse_process`, a plain child process (see there why).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pickle
import socket
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import structlog

import nexusmail
from nexusmail.ingest import parse_process
from nexusmail.ingest.parse_process import HEADER as _HEADER

log = structlog.get_logger(__name__)

T = TypeVar("T")

_STOP_TIMEOUT_S = 5.0
# Jobs handed to one worker at a time: enough that it never waits for the loop, few
# enough that the others wait as the caller's bytes, not as pickled copies in a socket
# buffer (with every job written at once the daemon's peak RSS grew by ~4 MB at 32
# connections; with 2 the worker sometimes waited on a busy loop).
_AHEAD_PER_WORKER = 4


class WorkerLost(Exception):
    """The parse process died before it answered."""


class JobTimedOut(Exception):
    """A job outran its deadline: its worker was killed (and is replaced)."""


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]
    writer: asyncio.StreamWriter
    pending: deque[asyncio.Future[Any]] = field(default_factory=deque)
    reading: asyncio.Task[None] | None = None
    alive: bool = True


class ParseWorkers:
    """`processes` worker processes; `run(fn, *args)` in the least busy one.

    `fn`, its arguments and its result must pickle; `fn` runs in the worker, so it must
    be a module-level function. Each new worker imports the `preload` modules first.
    """

    def __init__(self, processes: int, *, preload: Sequence[str] = ()) -> None:
        if processes < 1:
            raise ValueError("ParseWorkers needs at least one process")
        self._preload = tuple(preload)
        self._slots: list[_Worker | None] = [None] * processes
        self._starting: list[asyncio.Task[_Worker] | None] = [None] * processes
        self._closed = False
        self._ahead = asyncio.Semaphore(_AHEAD_PER_WORKER * processes)

    async def start(self) -> None:
        """Start every worker now (warmed up, answering) rather than on the first mail."""
        await asyncio.gather(*(self._worker(i) for i in range(len(self._slots))))

    async def run(self, fn: Callable[..., T], *args: Any, timeout_s: float | None = None) -> T:
        """`fn(*args)` in a worker. Past `timeout_s` the worker is killed and JobTimedOut
        raised; jobs that were queued behind it on that worker run again on another
        (once: a job that kills workers itself is not tried a third time)."""
        async with self._ahead:
            for attempt in (1, 2):
                if self._closed:
                    raise WorkerLost("the parse workers are closed")
                worker = await self._worker(self._least_busy())
                try:
                    return await self._call(worker, fn, args, timeout_s)
                except WorkerLost:
                    if attempt == 2:
                        raise
            raise AssertionError("unreachable")

    async def _call(self, worker: _Worker, fn: Callable[..., T], args: tuple[Any, ...],
                    timeout_s: float | None = None) -> T:
        data = pickle.dumps((fn, args), protocol=pickle.HIGHEST_PROTOCOL)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        worker.pending.append(future)
        # Two writes, not one of header + data: that would copy a 20 MB mail once more.
        worker.writer.write(_HEADER.pack(len(data)))
        worker.writer.write(data)
        try:
            with contextlib.suppress(ConnectionError):  # the reader fails the future
                await worker.writer.drain()
            return await asyncio.wait_for(asyncio.shield(future), timeout_s)
        except TimeoutError:
            # The worker is busy with this job and would stay so: kill it; the reader
            # then fails everything it had and a new worker starts for the next job.
            log.warning("parse_worker.job_timed_out", pid=worker.process.pid,
                        timeout_s=timeout_s)
            future.cancel()
            with contextlib.suppress(ProcessLookupError):
                worker.process.kill()
            raise JobTimedOut(f"parsing took longer than {timeout_s:g} s") from None
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
            try:
                await asyncio.to_thread(worker.process.wait, _STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                worker.process.kill()
                await asyncio.to_thread(worker.process.wait)
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
        command = [sys.executable, "-m", parse_process.__name__, str(theirs.fileno()),
                   *self._preload]
        try:
            # fork+exec at once (no Python runs in the child before exec), so the
            # threads of the daemon (the store's writer) cannot leave a held lock behind.
            process = await asyncio.to_thread(
                subprocess.Popen, command, pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL, env=_child_environment())
        finally:
            theirs.close()
        reader, writer = await asyncio.open_connection(sock=ours)
        worker = _Worker(process, writer)
        worker.reading = asyncio.create_task(self._read_answers(worker, reader),
                                             name=f"parse-{index}-answers")
        # Answering before it is handed a mail: a job's deadline must not count the
        # interpreter's start and imports (~0.5 s) of a replacement worker.
        await self._call(worker, parse_process.ready, ())
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
            # Waited for, so a dead worker leaves no zombie and no ResourceWarning for
            # whichever code runs at the next garbage collection.
            await self._reap(worker.process)

    @staticmethod
    async def _reap(process: subprocess.Popen[bytes]) -> None:
        try:
            await asyncio.to_thread(process.wait, _STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            await asyncio.to_thread(process.wait)


def _child_environment() -> dict[str, str]:
    """Ours, with this copy of nexusmail first on the path: the worker must unpickle
    the same code as the daemon, whether installed or run from a source tree."""
    source_root = str(Path(nexusmail.__file__).resolve().parent.parent)
    path = os.environ.get("PYTHONPATH", "")
    return {**os.environ,
            "PYTHONPATH": source_root + (os.pathsep + path if path else "")}

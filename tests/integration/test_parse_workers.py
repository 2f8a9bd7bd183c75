"""Parse processes fed over socket pairs: answers in order, failures contained."""

from __future__ import annotations

import asyncio
import operator
import os
import signal
import time
from collections.abc import AsyncIterator

import pytest

from nexusmail.ingest.parse_workers import JobTimedOut, ParseWorkers, WorkerLost


@pytest.fixture
async def workers() -> AsyncIterator[ParseWorkers]:
    pool = ParseWorkers(1)
    await pool.start()
    try:
        yield pool
    finally:
        await pool.close()


async def test_many_jobs_answer_their_own_callers(workers: ParseWorkers) -> None:
    """Concurrent jobs, big arguments and results: each caller gets its own answer."""
    blobs = [os.urandom(1000 * i) for i in range(1, 40)]
    results = await asyncio.gather(*(workers.run(operator.add, b, b"!") for b in blobs))
    assert results == [b + b"!" for b in blobs]
    assert await workers.run(os.getpid) != os.getpid()


async def test_an_exception_reaches_the_caller_and_the_worker_goes_on(
        workers: ParseWorkers) -> None:
    """A job that raises: the caller gets the exception, the next job is answered."""
    with pytest.raises(ValueError, match="invalid literal"):
        await workers.run(int, "not a number")
    assert await workers.run(int, "42") == 42


async def test_a_dead_worker_is_replaced_and_its_job_tried_once_more(
        workers: ParseWorkers) -> None:
    """A worker killed mid-job: the job runs again on a new worker; killed there too,
    it fails with WorkerLost; a new worker takes the next job."""
    pid = await workers.run(os.getpid)
    sleeping = asyncio.ensure_future(workers.run(time.sleep, 30))
    await asyncio.sleep(0.2)
    os.kill(pid, signal.SIGKILL)
    await asyncio.sleep(0.5)
    second = next(w.process.pid for w in workers._slots if w is not None and w.alive)
    assert second != pid
    os.kill(second, signal.SIGKILL)
    with pytest.raises(WorkerLost):
        await asyncio.wait_for(sleeping, 10)
    assert await workers.run(os.getpid) not in (pid, second, os.getpid())


async def test_a_job_past_its_deadline_is_cut_and_the_queue_behind_it_served(
        workers: ParseWorkers) -> None:
    """A job outrunning its deadline raises JobTimedOut and its worker is killed and
    waited for; a job queued behind it on that worker is answered by the next one."""
    pid = await workers.run(os.getpid)
    stuck = asyncio.ensure_future(workers.run(time.sleep, 30, timeout_s=0.5))
    await asyncio.sleep(0.05)
    behind = asyncio.ensure_future(workers.run(operator.add, 2, 3))
    with pytest.raises(JobTimedOut, match=r"longer than 0\.5 s"):
        await asyncio.wait_for(stuck, 10)
    assert await asyncio.wait_for(behind, 10) == 5
    assert await workers.run(os.getpid) != pid


async def test_a_cancelled_job_does_not_shift_the_answers(workers: ParseWorkers) -> None:
    """The caller went away (SMTP client gone): its late answer is dropped, not handed on."""
    slow = asyncio.ensure_future(workers.run(time.sleep, 0.3))
    await asyncio.sleep(0.05)
    slow.cancel()
    assert await workers.run(operator.add, 1, 2) == 3


async def test_close_lets_the_job_in_hand_finish() -> None:
    """Closing waits for the answer in progress, then the worker exits."""
    pool = ParseWorkers(1)
    await pool.start()
    job = asyncio.ensure_future(pool.run(operator.mul, 6, 7))
    await asyncio.sleep(0)
    await pool.close()
    assert await job == 42
    with pytest.raises(WorkerLost):
        await pool.run(operator.add, 1, 1)

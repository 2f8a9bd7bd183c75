"""Child processes for the benchmark: own process groups, stopped for sure, measured.

Every server runs in its own session (process group), so stopping it reaches anything
it started, and nothing outlives the harness even when it fails halfway.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

CLK_TCK = os.sysconf("SC_CLK_TCK")
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True)
class GroupUsage:
    """CPU seconds and memory of every process in one process group at one moment."""

    cpu_s: float
    processes: int
    hwm_mb: float  # sum of VmHWM: peak RSS of each live process
    leader_hwm_mb: float
    # Sum of Pss now: shared pages (a forked worker's, libraries) are counted once.
    pss_mb: float = 0.0


class Child:
    """A process in its own session; stdout to a log file we can poll."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path, *,
                 cwd: Path | None = None, env: dict[str, str] | None = None,
                 stdout_pipe: bool = False) -> None:
        self.name = name
        self.log_path = log_path
        self._log: IO[bytes] = log_path.open("wb")
        self.proc = subprocess.Popen(
            list(argv), cwd=cwd, env=env, start_new_session=True,
            stdout=subprocess.PIPE if stdout_pipe else self._log,
            stderr=None if stdout_pipe else subprocess.STDOUT,
        )
        self.pgid = self.proc.pid  # start_new_session: the child leads its own group
        self.exit_code: int | None = None
        self.stop_s: float | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, timeout_s: float = STOP_TIMEOUT_S) -> int | None:
        """SIGTERM the group, wait, then SIGKILL whatever is left of it."""
        if self.exit_code is None:
            started = time.monotonic()
            _signal_group(self.pgid, signal.SIGTERM)
            try:
                self.exit_code = self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                _signal_group(self.pgid, signal.SIGKILL)
                self.exit_code = self.proc.wait(5)
            self.stop_s = time.monotonic() - started
        # The leader may be gone while something it started still runs in its group.
        _signal_group(self.pgid, signal.SIGKILL)
        self._log.close()
        return self.exit_code


def _signal_group(pgid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pgid, sig)


class Children:
    """Every child started in one run; `stop_all` is safe to call more than once."""

    def __init__(self) -> None:
        self._children: list[Child] = []

    def start(self, name: str, argv: Sequence[str], log_path: Path, *,
              cwd: Path | None = None, env: dict[str, str] | None = None,
              stdout_pipe: bool = False) -> Child:
        child = Child(name, argv, log_path, cwd=cwd, env=env, stdout_pipe=stdout_pipe)
        self._children.append(child)
        return child

    def stop_all(self) -> None:
        for child in reversed(self._children):
            child.stop()

    def __enter__(self) -> Children:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop_all()


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    # comm (field 2) may hold spaces and parentheses; the rest follows the last ')'.
    return text[text.rindex(")") + 2:].split()


def _hwm_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError):
        pass
    return 0.0


def thread_cpu(pid: int) -> dict[int, float]:
    """CPU seconds (utime+stime) of each live thread of `pid`, by native thread id."""
    out: dict[int, float] = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except FileNotFoundError:
        return out
    for tid in tids:
        try:
            text = Path(f"/proc/{pid}/task/{tid}/stat").read_text()
        except FileNotFoundError:
            continue  # the thread ended meanwhile
        fields = text[text.rindex(")") + 2:].split()
        out[int(tid)] = (int(fields[11]) + int(fields[12])) / CLK_TCK
    return out


def _pss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024.0
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        pass
    return 0.0


def group_cpu_by_process(pgid: int) -> dict[int, tuple[str, float]]:
    """(command line, CPU seconds) of each live process in the group, by pid."""
    out: dict[int, tuple[str, float]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        if fields is None or int(fields[2]) != pgid:
            continue
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().split(b"\0")
        except FileNotFoundError:
            continue
        # Interpreter path dropped: the arguments say which role the process has.
        name = " ".join(a.decode(errors="replace") for a in argv[1:4] if a)[:80]
        out[int(entry)] = (name, (int(fields[11]) + int(fields[12])) / CLK_TCK)
    return out


def group_usage(pgid: int) -> GroupUsage:
    """utime+stime (all threads) and VmHWM of each live process whose group is `pgid`.

    Summed over the group so that a server parsing in worker processes is charged
    for them too, not only for its main process.
    """
    cpu_ticks = 0
    hwm = 0.0
    pss = 0.0
    count = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        fields = _stat_fields(int(entry))
        # After ')': state(0) ppid(1) pgrp(2) ... utime(11) stime(12)
        if fields is None or int(fields[2]) != pgid:
            continue
        cpu_ticks += int(fields[11]) + int(fields[12])
        hwm += _hwm_mb(int(entry))
        pss += _pss_mb(int(entry))
        count += 1
    return GroupUsage(cpu_ticks / CLK_TCK, count, hwm, _hwm_mb(pgid), pss)

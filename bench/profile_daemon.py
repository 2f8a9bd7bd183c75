"""Run `nexusmail` instrumented: cProfile in every thread, or just a map of its threads.

`python -m cProfile` sees only the main thread; the daemon parses mail in executor
threads and talks to SQLite from a writer thread, so those costs would be missing.
With `--out`, each thread started after the hook is set gets its own profiler, and all
are merged into one pstats file when the daemon returns (SIGTERM stops it cleanly).
The timer is each thread's CPU clock, not the wall clock: a thread waiting on a queue
or for the GIL would otherwise show that wait as the cost of the call it sits in.
cProfile's overhead per call is large here (it inflates call-heavy code such as
line-by-line reads), so use the shares as a ranking, not as timings.

With `--threads-out`, nothing is profiled: each thread's name and native id is written
down, so the harness can read undistorted CPU per thread from /proc/<pid>/task.

    python bench/profile_daemon.py --out out/daemon.prof -- --config FILE run
    python bench/profile_daemon.py --threads-out out/threads.jsonl -- --config FILE run
"""

from __future__ import annotations

import argparse
import cProfile
import json
import pstats
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()
_threads_file: TextIO | None = None


def _note_thread() -> None:
    if _threads_file is not None:
        current = threading.current_thread()
        with _lock:
            _threads_file.write(json.dumps({"native_id": current.native_id,
                                            "name": current.name}) + "\n")
            _threads_file.flush()


def _start_in_thread(frame: FrameType, event: str, arg: Any) -> None:
    # Called once by threading at the start of each new thread: swap this hook
    # for what we want in that thread.
    sys.setprofile(None)
    _note_thread()
    if _threads_file is None:
        profile = cProfile.Profile(time.thread_time)
        with _lock:
            _profiles.append(profile)
        profile.enable()


def main(argv: list[str] | None = None) -> int:
    global _threads_file
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--out", type=Path, help="merged pstats file")
    mode.add_argument("--threads-out", type=Path, help="JSON lines: native_id, name")
    parser.add_argument("nexusmail_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    nexusmail_args = [a for a in args.nexusmail_args if a != "--"] or ["run"]

    try:
        from nexusmail.cli.main import main as nexusmail_main
    except ImportError:  # revisions before the cli/ package (bench --daemon-rev)
        from nexusmail.cli import main as nexusmail_main  # type: ignore[attr-defined,no-redef]

    if args.threads_out is not None:
        _threads_file = args.threads_out.open("w")
        _note_thread()
        threading.setprofile(_start_in_thread)
        try:
            return nexusmail_main(nexusmail_args)
        finally:
            threading.setprofile(None)
            _threads_file.close()

    threading.setprofile(_start_in_thread)
    main_profile = cProfile.Profile(time.thread_time)
    main_profile.enable()
    try:
        code = nexusmail_main(nexusmail_args)
    finally:
        main_profile.disable()
        threading.setprofile(None)
        stats = pstats.Stats(main_profile)
        with _lock:
            for profile in _profiles:
                # Threads still running keep their profiler on; the snapshot is enough.
                stats.add(profile)
        stats.dump_stats(str(args.out))
    return code


if __name__ == "__main__":
    sys.exit(main())

"""Run `nexusmail` under cProfile in every thread, and dump one merged profile on exit.

`python -m cProfile` sees only the main thread; the daemon parses mail in executor
threads and talks to SQLite from a writer thread, so those costs would be missing.
Here each thread started after the hook is set gets its own profiler, and all are
merged into one pstats file when the daemon returns (SIGTERM stops it cleanly).

The timer is each thread's CPU clock, not the wall clock: a thread waiting on a queue
or for the GIL would otherwise show that wait as the cost of the call it sits in.

    python bench/profile_daemon.py --out out/daemon.prof -- --config FILE run
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import threading
import time
from pathlib import Path
from types import FrameType
from typing import Any

_profiles: list[cProfile.Profile] = []
_lock = threading.Lock()


def _start_in_thread(frame: FrameType, event: str, arg: Any) -> None:
    # Called once by threading at the start of each new thread: swap this hook
    # for a real profiler belonging to that thread.
    sys.setprofile(None)
    profile = cProfile.Profile(time.thread_time)
    with _lock:
        _profiles.append(profile)
    profile.enable()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True, help="merged pstats file")
    parser.add_argument("nexusmail_args", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    nexusmail_args = [a for a in args.nexusmail_args if a != "--"] or ["run"]

    from nexusmail.cli import main as nexusmail_main

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

"""Reply reading throughput: read_reply over the reply fixture set, on one core.

Pure CPU work (quote stripping, HTML to text for HTML-only replies, the verdict), so
the figure is replies/s of one process pinned to one CPU. Each round reads every
fixture once; the best round is reported (the machine is shared, the best is the least
disturbed), with the median beside it.

    python bench/reply_reading.py                 # 200 rounds over the fixture table
    python bench/reply_reading.py --rounds 50 --text-only
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import shlex
import statistics
import sys
import time
from pathlib import Path
from types import ModuleType

from machine import cpu_model

from nexusmail.mail.reply_reading import read_reply

CASES_PATH = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "replies" / "cases.py"


def load_cases() -> ModuleType:
    spec = importlib.util.spec_from_file_location("reply_cases", CASES_PATH)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {CASES_PATH.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module



def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--text-only", action="store_true",
                        help="leave out the HTML-only replies")
    args = parser.parse_args(argv)

    pinned = "no"
    if hasattr(os, "sched_setaffinity"):
        cpu = min(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpu})
        pinned = f"cpu {cpu}"

    replies = [(case.text, case.html) for case in load_cases().CASES
               if not (args.text_only and case.text is None)]
    for text, html in replies:  # warm up: imports done, CPU caches filled
        read_reply(text, html)

    per_round: list[float] = []
    cpu_start = time.process_time()
    for _ in range(args.rounds):
        start = time.perf_counter()
        for text, html in replies:
            read_reply(text, html)
        per_round.append(time.perf_counter() - start)
    cpu_s = time.process_time() - cpu_start

    best = len(replies) / min(per_round)
    median = len(replies) / statistics.median(per_round)
    total = len(replies) * args.rounds
    print(f"reply reading: {best:,.0f} replies/s best round, {median:,.0f} median "
          f"({len(replies)} replies x {args.rounds} rounds, "
          f"{1e6 * cpu_s / total:.1f} us CPU per reply)")
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, pinned: {pinned}, "
          f"Python {platform.python_version()} ({platform.python_implementation()}), "
          f"{platform.system()} {platform.release()}")
    print(f"command: python bench/{Path(__file__).name} {shlex.join(sys.argv[1:])}".rstrip())
    return 0


if __name__ == "__main__":
    sys.exit(main())

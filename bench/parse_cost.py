"""Benchmark (not a test): what the parse step (`prepare`) spends per mail of the corpus.

    python bench/parse_cost.py                      # 2,000 mails of the SMTP ingest corpus
    python bench/parse_cost.py --runs 5             # more timed passes
    python bench/parse_cost.py --profile tottime 40 # and a cProfile of one more pass

`prepare` is what a parse worker runs per mail: hash, parse, classify, guess the
language and the request, and read a reply that may name an assignment. One warm-up
pass, then each timed pass prints the thread's CPU per mail. On a shared machine,
compare two trees alternately in one sitting (PYTHONPATH at each), several runs each.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import time

from corpus import DEFAULT_SEED, SUPPORT_ADDRESS, build

from nexusmail.config import Settings
from nexusmail.ingest.prepare import prepare


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mails", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--profile", nargs=2, metavar=("SORT", "LINES"))
    args = parser.parse_args()
    limits = Settings.model_validate({"mail": {"support_addresses": [SUPPORT_ADDRESS]}}).limits
    corpus = build(args.mails, DEFAULT_SEED)
    items = list(zip(corpus.load(), corpus.metas, strict=True))

    def prepare_all() -> None:
        for raw, meta in items:
            prepare(raw, meta.sender, ["firm.test"], limits.max_body_chars,
                    limits.max_attachments, (SUPPORT_ADDRESS,))

    prepare_all()  # warm-up: imports, regex caches
    for _ in range(args.runs):
        started = time.thread_time()
        prepare_all()
        print(f"prepare {(time.thread_time() - started) / len(items) * 1000:.3f} ms/mail")
    if args.profile:
        profile = cProfile.Profile(time.thread_time)
        profile.enable()
        prepare_all()
        profile.disable()
        pstats.Stats(profile).sort_stats(args.profile[0]).print_stats(int(args.profile[1]))


if __name__ == "__main__":
    main()

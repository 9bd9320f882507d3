"""Soak: cycles of create session -> stream over WebRTC to an aiortc client -> close, a few in parallel.

    python bench/soak.py --full             # 300 cycles, 3 in parallel, 2 s of video each
    python bench/soak.py --cycles 30        # the CI size (tests/test_soak.py)

The cycles and the leftover counts live in avatar_testkit/soak.py (shared with the test):
open file descriptors, threads, asyncio tasks, live RTCPeerConnection objects, sessions, cached
and pinned portraits, and output files, against the baseline taken after a warm-up round.
This script adds the resident-memory check: a figure that moves with the allocator and the
machine, so it is measured here and recorded in bench/README.md, never asserted by a test.
Exit code 1 when a check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import sys

from avatar_testkit.soak import SoakResult, run_soak

RSS_LIMIT_FULL_MB = 50.0  # growth allowed from cycle 50 to cycle 300


def rss_check(res: SoakResult) -> tuple[int, int, float, float]:
    """(from cycle, to cycle, growth MB, limit MB). The full run checks cycle 50 -> 300 against
    50 MB. A shorter run checks its second half (its first cycles still warm up allocator
    arenas and codec state; the full run plateaus after about 60) against the proportionate
    limit, but never below 15 MB (RSS moves by several MB on its own)."""
    points = sorted(res.rss_by_cycle)
    target = 50 if res.cycles >= 300 else res.cycles / 2
    start = min(points, key=lambda c: abs(c - target))
    end = points[-1]
    limit = RSS_LIMIT_FULL_MB * max(1, end - start) / 250
    return start, end, res.growth_mb(start, end), max(limit, 15.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="300 cycles (the benchmark)")
    p.add_argument("--cycles", type=int, default=30)
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--stream-seconds", type=float, default=2.0)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    cycles = 300 if args.full else args.cycles
    if not 1 <= cycles <= 5000 or not 1 <= args.parallel <= 8:
        raise SystemExit("error: --cycles must be 1..5000 and --parallel 1..8")
    res = asyncio.run(run_soak(cycles, args.parallel, args.stream_seconds, args.size, progress=True))
    start, end, growth, limit = rss_check(res)
    res.checks["rss"] = growth < limit
    print(json.dumps(res.summary(), indent=1))
    print(f"RSS growth cycle {start} -> {end}: {growth:+.1f} MB (limit {limit:.0f} MB); "
          f"checks: {res.checks}")
    return 0 if all(res.checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

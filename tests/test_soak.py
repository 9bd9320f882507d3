"""The soak in CI size: 30 cycles of create session -> 1 s of WebRTC video -> close, 3 in parallel,
with a REST render per cycle. Leftovers are counted against the baseline taken after a warm-up
round (bench/soak.py); the full 300-cycle run and its figures are in bench/README.md.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from soak import rss_check, run_soak  # noqa: E402


async def test_soak_short_leaves_nothing_behind(mesh_engine):
    res = await run_soak(cycles=30, parallel=3, stream_s=1.0, size=256, output_ttl_s=3.0,
                         engine=mesh_engine)
    start, end, growth, limit = rss_check(res)
    print(f"soak: {res.cycles} cycles, {res.frames} video frames, {res.seconds:.1f} s; RSS growth "
          f"cycle {start} -> {end}: {growth:+.1f} MB (limit {limit:.0f} MB); baseline "
          f"{json.dumps(res.baseline.__dict__)}; after {json.dumps(res.after.__dict__)}")
    assert not res.failures, res.failures
    assert res.frames >= res.cycles * 10  # each cycle really streamed (25 fps for 1 s)
    failed = [k for k, ok in res.checks.items() if not ok]
    assert not failed, (failed, res.baseline, res.after)
    assert growth < limit, (growth, limit, res.rss_by_cycle)

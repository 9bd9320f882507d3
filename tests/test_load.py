"""Short REST load runs (bench/load.py's generator) against the real server on loopback.

Below capacity every request is a 200; far above it, the bounded engine queue turns the excess
into 503 + Retry-After and the admitted requests keep a bounded latency. Figures print with -s/-rA.
The full sweep and the capacity figures are in bench/README.md ("Load, soak, faults").
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from load import closed_loop  # noqa: E402


# Generous on a shared 2-core box: the bound is what matters (an unbounded queue at 40 clients
# would reach tens of seconds), not the exact figure.
ADMITTED_P95_LIMIT_MS = 2500.0


async def test_below_capacity_has_no_errors(start_server, grace_hopper_jpeg):
    srv = await start_server()
    await closed_loop(srv.base_url, grace_hopper_jpeg, 1, 0.5)  # prepare + cache the portrait
    res = await closed_loop(srv.base_url, grace_hopper_jpeg, 2, 3.0)
    print("load below capacity:", json.dumps(res.summary()))
    assert res.ok >= 5, res.summary()
    assert res.bad_count == 0 and res.refused == 0, (res.summary(), res.bad)


async def test_far_above_capacity_only_refuses_with_retry_after(start_server, grace_hopper_jpeg):
    srv = await start_server(engine_queue=4)
    await closed_loop(srv.base_url, grace_hopper_jpeg, 1, 0.5)
    res = await closed_loop(srv.base_url, grace_hopper_jpeg, 40, 3.0, accept="jpeg")
    print("load far above capacity:", json.dumps(res.summary()))
    assert res.bad_count == 0, (res.summary(), res.bad)  # only 200 or 429/503 + Retry-After
    assert set(res.statuses) <= {200, 429, 503}
    assert res.refused > 0 and res.ok > 0, res.summary()
    assert res.pct(95) < ADMITTED_P95_LIMIT_MS, res.summary()
    # the server still answers normally once the flood stops
    after = await closed_loop(srv.base_url, grace_hopper_jpeg, 1, 0.5)
    assert after.ok >= 1 and after.refused == 0 and after.bad_count == 0, after.summary()

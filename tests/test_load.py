"""Short REST load runs (avatar_testkit.load's generator) against the real server on loopback.

Below capacity every request is a 200; far above it, the bounded engine queue turns the excess
into 503 + Retry-After and never holds more than its bound (no backlog, so admitted requests
wait for at most a queue's worth of renders). Figures print with -s/-rA; the full sweep with its
latencies and the capacity figures is in bench/README.md ("Load, soak, faults").
"""
from __future__ import annotations

import asyncio
import json

from avatar_testkit.load import closed_loop
from avatar_testkit.wait import wait_until


async def test_below_capacity_has_no_errors(start_server, grace_hopper_jpeg):
    srv = await start_server()
    await closed_loop(srv.base_url, grace_hopper_jpeg, 1, 0.5)  # prepare + cache the portrait
    res = await closed_loop(srv.base_url, grace_hopper_jpeg, 2, 3.0)
    print("load below capacity:", json.dumps(res.summary()))
    assert res.ok >= 2, res.summary()  # each client got its answers
    assert res.bad_count == 0 and res.refused == 0, (res.summary(), res.bad)


async def test_far_above_capacity_only_refuses_with_retry_after(start_server, grace_hopper_jpeg):
    queue = 4
    srv = await start_server(engine_queue=queue)
    await closed_loop(srv.base_url, grace_hopper_jpeg, 1, 0.5)
    worker = srv.state.worker
    depths: list[int] = []

    async def watch() -> None:  # the engine queue's depth, sampled through the flood
        while True:
            depths.append(worker.stats.pending)
            await asyncio.sleep(0.01)

    watcher = asyncio.ensure_future(watch())
    try:
        res = await closed_loop(srv.base_url, grace_hopper_jpeg, 40, 3.0, accept="jpeg")
    finally:
        watcher.cancel()
    print("load far above capacity:", json.dumps(res.summary()), "max queue depth", max(depths))
    assert res.bad_count == 0, (res.summary(), res.bad)  # only 200 or 429/503 + Retry-After
    assert set(res.statuses) <= {200, 429, 503}
    assert res.refused > 0 and res.ok > 0, res.summary()
    # No backlog: 40 clients, yet the queue never held more than its bound (REST work cannot
    # use the sessions' reserve), so an admitted request waits for at most `queue` renders.
    assert 0 < max(depths) <= queue, depths
    # the server still answers normally once the flood stops
    await wait_until(lambda: worker.stats.pending == 0)
    after = await closed_loop(srv.base_url, grace_hopper_jpeg, 1, 0.5)
    assert after.ok >= 1 and after.refused == 0 and after.bad_count == 0, after.summary()

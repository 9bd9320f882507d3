"""Issue 15, item 2: live sessions keep their frames while the heaviest allowed REST request runs.

The server as `serve` runs it on a CPU (the mesh engine in its child process), one live
session streaming to a real WebSocket client, and the heaviest request the default budget
allows: a 4000x4000 JPEG, /render/batch, mode=full, as many emotions as the budget takes.
The requirement is the assertion: no gap of 0.5 s or more between two frames the server
hands over to the session (Session.handovers, the scheduler's own record, so the test's
client being slow to read cannot fail it). A machine so loaded that the session stutters
on its own cannot meet any bound: the gaps of a quiet window just before the request are the
control, and the bound is 0.5 s or twice the control's longest gap, whichever is larger (the
code before issue 15 froze sessions for 6-14 s here). Timings of the request itself are
printed, never asserted; bench/live_gaps.py measures them.
"""
from __future__ import annotations

import asyncio
import io
import time

import aiohttp
import pytest
from PIL import Image

from avatar_testkit.pyclient import SessionClient, portrait_form
from avatar_testkit.wait import wait_until
from engine.motion import EMOTIONS
from streamer.config import ServerConfig
from streamer.http.decode import fit_size
from streamer.http.rest import MAX_BATCH
from streamer.runtime.engine_factory import EngineRequest
from streamer.runtime.engine_process import ProcessEngine
from streamer.samples import sample_portrait_bytes

MAX_GAP_S = 0.5  # the requirement (issue 15)
CONTROL_S = 3.0  # the quiet window measured first
SIDE = 4000


@pytest.fixture(scope="module")
def child_engine():
    eng = ProcessEngine(EngineRequest("mesh", "cpu"))
    yield eng
    eng.close()


def _big_jpeg() -> bytes:
    img = Image.open(io.BytesIO(sample_portrait_bytes("astronaut"))).convert("RGB")
    out = io.BytesIO()
    img.resize((SIDE, SIDE), Image.Resampling.BICUBIC).save(out, format="JPEG", quality=90)
    return out.getvalue()


def _max_gap(stamps: list[float], t0: float, t1: float) -> float:
    points = [t0, *sorted(t for t in stamps if t0 <= t <= t1), t1]
    return max(b - a for a, b in zip(points, points[1:]))


async def test_sessions_keep_frames_during_the_heaviest_allowed_request(start_server, child_engine,
                                                                       grace_hopper_jpeg):
    defaults = ServerConfig()
    w, h = fit_size(SIDE, SIDE, defaults.max_source_pixels)
    allowed = min(MAX_BATCH, defaults.max_request_pixels // (w * h))
    assert allowed >= 2, "the default budget should allow a real batch of full frames"
    emotions = ",".join((list(EMOTIONS) * 4)[:allowed])
    too_many = ",".join((list(EMOTIONS) * 4)[:allowed + 1])
    photo = _big_jpeg()

    srv = await start_server(engine=child_engine)
    stamps: list[float] = []
    async with aiohttp.ClientSession() as http:
        client = await SessionClient.create(http, srv.base_url, grace_hopper_jpeg, size=256)
        await client.connect()
        await client.send({"type": "subscribe_frames", "format": "jpeg", "quality": 80})
        [session] = srv.state.sessions.active()
        await wait_until(lambda: len(session.handovers) >= 25, message="the session never streamed")

        if allowed < MAX_BATCH:  # one more frame is past the budget: this is the heaviest
            async with http.post(srv.base_url + "/render/batch",
                                 data=portrait_form(photo, mode="full", emotions=too_many)) as r:
                assert r.status == 413 and (await r.json())["error"]["code"] == "request_too_costly"

        stop = asyncio.Event()

        async def collect() -> None:
            while not stop.is_set():
                last = stamps[-1] if stamps else -1.0
                stamps.extend(t for t in list(session.handovers) if t > last)
                await asyncio.sleep(0.05)

        collector = asyncio.create_task(collect())
        c0 = time.monotonic()
        await wait_until(lambda: stamps and stamps[-1] >= c0 + CONTROL_S, message="the session stopped")
        c1 = time.monotonic()
        t0 = time.monotonic()
        async with http.post(srv.base_url + "/render/batch",
                             data=portrait_form(photo, mode="full", emotions=emotions)) as r:
            assert r.status == 200, await r.text()
            results = (await r.json())["results"]
        t1 = time.monotonic()
        await wait_until(lambda: stamps and stamps[-1] >= t1 or session.closed)
        stop.set()
        await collector
        await client.close()

    assert len(results) == allowed and results[0]["width"] == w and results[0]["height"] == h
    gap = _max_gap(stamps, t0, t1)
    control = _max_gap(stamps, c0, c1)
    frames = sum(1 for t in stamps if t0 <= t <= t1)
    print(f"\n{allowed} full frames of {w}x{h} from a {SIDE}x{SIDE} JPEG in {t1 - t0:.1f} s; "
          f"the session got {frames} frames, longest gap {gap:.3f} s (control window: {control:.3f} s)")
    bound = max(MAX_GAP_S, 2 * control)
    assert gap < bound, f"a live session went {gap:.2f} s without a frame during a REST batch"

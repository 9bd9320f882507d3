"""The render loop on a real server: per-session fps, dropped frames on overrun (no
backlog), and a failing engine call reported to its session while the others go on.

The engines here wrap the real MeshEngine to slow it down or make it fail on purpose.
"""
from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import aiohttp

from streamer.sessions import registry_of
from streamer.sessions.pyclient import SessionClient


class WrappedEngine:
    """The real mesh engine, plus a delay per render call and sources that fail on demand."""

    def __init__(self, inner: Any, delay_s: float = 0.0) -> None:
        self.inner = inner
        self.name = inner.name
        self.delay_s = delay_s
        self.broken: set[int] = set()
        self._lock = threading.Lock()

    @property
    def info(self):  # type: ignore[no-untyped-def]
        return self.inner.info

    def prepare(self, image):  # type: ignore[no-untyped-def]
        return self.inner.prepare(image)

    def render(self, jobs, mode="crop", size=None):  # type: ignore[no-untyped-def]
        if any(id(src) in self.broken for src, _ in jobs):
            raise RuntimeError("injected failure")
        time.sleep(self.delay_s)
        return self.inner.render(jobs, mode=mode, size=size)

    def release(self, source):  # type: ignore[no-untyped-def]
        self.inner.release(source)


async def _frames_in(c: SessionClient, seconds: float) -> int:
    while not c.binary.empty():
        c.binary.get_nowait()
    await asyncio.sleep(seconds)
    return c.binary.qsize()


async def test_sessions_with_different_fps(server, astronaut_jpeg, grace_hopper_jpeg):
    async with aiohttp.ClientSession() as http:
        fast = await SessionClient.create(http, server.base_url, astronaut_jpeg, size="128", fps="25")
        slow = await SessionClient.create(http, server.base_url, grace_hopper_jpeg, size="128", fps="5")
        for c in (fast, slow):
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 50})
        await asyncio.sleep(0.5)
        n_fast, n_slow = await asyncio.gather(_frames_in(fast, 2.0), _frames_in(slow, 2.0))
        assert 7 <= n_slow <= 12, n_slow  # 5 fps for 2 s
        assert n_fast >= 2 * n_slow, (n_fast, n_slow)  # 25 fps, with slack for a busy box
        for c in (fast, slow):
            await c.close()
            async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
                assert r.status == 200


async def test_overrun_drops_frames_without_backlog(start_server, mesh_engine, astronaut_jpeg):
    srv = await start_server(engine=WrappedEngine(mesh_engine, delay_s=0.1))
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, srv.base_url, astronaut_jpeg, size="128", fps="25")
        await c.connect()
        await c.send({"type": "subscribe_frames", "format": "jpeg"})
        await c.wait_for("ready")
        s = registry_of(srv.state).get(c.session_id)
        f0, d0, t0 = s.frames_rendered, s.frames_dropped, time.monotonic()
        await asyncio.sleep(2.0)
        f1, d1, t1 = s.frames_rendered, s.frames_dropped, time.monotonic()
        slots = (t1 - t0) * 25
        assert (f1 - f0) < 0.5 * slots  # the engine cannot keep up ...
        assert d1 - d0 > 0.4 * slots  # ... so slots are dropped and counted ...
        assert abs((f1 - f0) + (d1 - d0) - slots) <= 3  # ... and never queued up
        stats = await c.wait_for("stats", after=len(c.events))
        assert stats["dropped"] >= d1 - d0
        await c.close()


async def test_engine_failure_reaches_only_its_session(start_server, mesh_engine, astronaut_jpeg,
                                                       grace_hopper_jpeg):
    engine = WrappedEngine(mesh_engine)
    srv = await start_server(engine=engine)
    reg = registry_of(srv.state)
    async with aiohttp.ClientSession() as http:
        bad = await SessionClient.create(http, srv.base_url, astronaut_jpeg, size="128")
        good = await SessionClient.create(http, srv.base_url, grace_hopper_jpeg, size="128")
        for c in (bad, good):
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "jpeg", "fps": 10})
            await c.wait_for("ready")
        engine.broken.add(id(reg.get(bad.session_id).source))
        err = await bad.wait_for("error", after=len(bad.events))
        assert err["code"] == "render_failed" and err["request_type"] is None
        assert await _frames_in(good, 0.6) >= 3  # the loop goes on for the other session
        assert not any(e["type"] == "error" for e in good.events)
        engine.broken.clear()
        assert await _frames_in(bad, 0.6) >= 3  # and the failed one recovers
        for c in (bad, good):
            await c.close()


async def test_control_flood_is_coalesced_and_bounded(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, size="128", fps="10",
                                       idle_motion="false")
        await c.connect()
        await c.send({"type": "subscribe_frames", "format": "jpeg"})
        await c.wait_for("ready")
        s = registry_of(server.state).get(c.session_id)
        f0, t0 = s.frames_rendered, time.monotonic()
        for i in range(150):  # far faster than the 10 fps the session renders
            await c.send({"type": "set_controls", "yaw": (i % 20) - 10, "transition_ms": 0})
            await asyncio.sleep(0.005)
        await c.send({"type": "set_controls", "yaw": 7, "transition_ms": 0, "id": "last"})
        st = await c.wait_for("state", id="last")
        assert st["seq"] == 151 and st["target"]["controls"]["yaw"] == 7  # the newest wins
        frames = s.frames_rendered - f0
        elapsed = time.monotonic() - t0
        # a fresh control may get one extra frame, but never more than 2x the fps
        assert frames <= 2 * 10 * elapsed + 3, (frames, elapsed)
        await asyncio.sleep(0.3)
        async with http.get(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert (await r.json())["motion"]["controls"]["yaw"] == 7
        await c.close()

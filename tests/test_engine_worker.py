"""EngineWorker in process mode: the real mesh engine in a real spawned child.

Prepare/render through the child give the same frames as the engine in-process; engine
errors come back typed; a killed child fails the call in flight cleanly and the next call
runs on a new child; shutdown does not wait for a stalled render and leaves no process and
no /dev/shm segment.
"""
from __future__ import annotations

import asyncio
import io
import os
import signal
import time
from pathlib import Path

import aiohttp
import numpy as np
import pytest
from PIL import Image

import engine_hooks

from avatar_testkit.pyclient import SessionClient
from avatar_testkit.wait import wait_until
from engine.api import EngineError, InvalidImageError, NoFaceError
from engine.motion import Motion
from streamer.runtime.engine_factory import EngineRequest
from streamer.runtime.engine_process import EngineCrashedError, ProcessEngine, wants_engine_process
from streamer.runtime.engine_worker import EngineWorker, QueueFullError

MESH = EngineRequest("mesh", "cpu")


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def _segments() -> set[str]:
    return {p.name for p in Path("/dev/shm").iterdir() if p.name.startswith("lpa-engine-")}


def _gone(pid: int) -> bool:
    """True when the process no longer exists at all (a zombie still has a /proc entry)."""
    return not Path(f"/proc/{pid}").exists()


def _dead(pid: int) -> bool:
    """True once the process has stopped running: gone, or a zombie not yet reaped."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except (OSError, IndexError):
        return True


# Shutdown bounds: normally well under a second. What they catch is a shutdown that waits for
# the stalled render (STALL_S) or for open WebSockets (aiohttp waits about 30 s for those), so
# they sit an order of magnitude above normal and still far below what they guard against.
STALL_S = 60.0
FAST_SHUTDOWN_S = 10.0


@pytest.fixture(scope="module")
def proc_engine():
    eng = ProcessEngine(MESH)
    yield eng
    eng.close()


def test_no_segment_left_while_running(proc_engine):
    # The name is unlinked once the child has mapped it: a killed server cannot leak it.
    assert proc_engine.pid is not None and not _gone(proc_engine.pid)
    assert not _segments()


def test_frames_match_the_in_process_engine(proc_engine, mesh_engine, astronaut_jpeg,
                                            grace_hopper_jpeg):
    images = [_rgb(astronaut_jpeg), _rgb(grace_hopper_jpeg)]
    remote = [proc_engine.prepare(im) for im in images]
    local = [mesh_engine.prepare(im) for im in images]
    for r, l in zip(remote, local):
        assert (r.width, r.height) == (l.width, l.height)
        assert np.allclose(r.face_box, l.face_box)
    motions = [Motion.emotion("happy", 1.0), Motion.emotion("surprised", 0.7)]
    for mode, size in (("crop", None), ("crop", 256), ("full", None)):
        got = proc_engine.render(list(zip(remote, motions)), mode=mode, size=size)
        want = mesh_engine.render(list(zip(local, motions)), mode=mode, size=size)
        assert [g.shape for g in got] == [w.shape for w in want]
        for g, w in zip(got, want):
            assert g.dtype == np.uint8 and np.array_equal(g, w)
    # A batch bigger than the shared buffer travels through the pipe, same result.
    small = ProcessEngine(MESH, frame_buffer_bytes=1 << 16)
    try:
        src = small.prepare(images[0])
        (frame,) = small.render([(src, motions[0])])
        assert np.array_equal(frame, mesh_engine.render([(local[0], motions[0])])[0])
    finally:
        small.close()


def test_engine_errors_come_back_typed(proc_engine, cat_jpeg, astronaut_jpeg):
    with pytest.raises(NoFaceError):
        proc_engine.prepare(_rgb(cat_jpeg))
    with pytest.raises(InvalidImageError):
        proc_engine.prepare(np.zeros((8, 8, 3), np.uint8))
    src = proc_engine.prepare(_rgb(astronaut_jpeg))
    proc_engine.release(src)
    with pytest.raises(EngineError):  # released: neither side has it any more
        proc_engine.render([(src, Motion())])
    # The child survived all of that.
    ok = proc_engine.prepare(_rgb(astronaut_jpeg))
    assert proc_engine.render([(ok, Motion())])[0].shape == (512, 512, 3)


async def test_crash_fails_the_call_then_restarts(astronaut_jpeg):
    eng = ProcessEngine(MESH, child_hook=engine_hooks.HOOK)
    worker = EngineWorker(eng)
    assert worker.mode == "process"
    try:
        src = await worker.prepare(_rgb(astronaut_jpeg))
        (before,) = await worker.render([(src, Motion.emotion("happy", 1.0))])
        old = eng.pid
        with pytest.raises(EngineCrashedError):  # exits mid-request
            await worker.call(eng.prepare, engine_hooks.crash_image())
        assert eng.restarts == 1 and _gone(old)  # reaped, not a zombie
        assert eng.pid is None and eng.info.name == "mesh"  # /health still has its answer
        # The next call starts a new child, which prepares the source again on first use.
        (after,) = await worker.render([(src, Motion.emotion("happy", 1.0))])
        assert eng.pid != old and np.array_equal(before, after)
        # Killed from outside while idle: same story.
        old = eng.pid
        os.kill(old, signal.SIGKILL)
        with pytest.raises(EngineCrashedError):
            await worker.render([(src, Motion())])
        assert _gone(old)
        assert (await worker.render([(src, Motion())]))[0].shape == (512, 512, 3)
    finally:
        worker.shutdown()
    assert not _segments()


async def test_shutdown_during_a_render_is_fast_and_clean(astronaut_jpeg):
    eng = ProcessEngine(MESH, child_hook=engine_hooks.HOOK)
    worker = EngineWorker(eng)
    src = await worker.prepare(_rgb(astronaut_jpeg))
    pid = eng.pid
    call = asyncio.ensure_future(worker.call(eng.prepare, engine_hooks.stall_image(int(STALL_S))))
    await wait_until(lambda: worker.stats.pending == 1)  # the stall is on the engine thread
    t0 = time.monotonic()
    worker.shutdown()
    with pytest.raises(EngineError):
        await asyncio.wait_for(call, FAST_SHUTDOWN_S)
    assert time.monotonic() - t0 < FAST_SHUTDOWN_S  # it did not wait for the stall
    assert _gone(pid) and not _segments()
    with pytest.raises(QueueFullError):  # closed: no new child
        await worker.render([(src, Motion())])
    assert eng.pid is None


def test_start_failure_is_a_clear_error():
    with pytest.raises(EngineError, match="unknown engine"):
        ProcessEngine(EngineRequest("nope", "cpu"))
    assert not _segments()


def test_auto_choice():
    assert wants_engine_process("on", EngineRequest("liveportrait", "cuda"))
    assert not wants_engine_process("off", MESH)
    assert wants_engine_process("auto", MESH)
    assert not wants_engine_process("auto", EngineRequest("liveportrait", "cuda"))
    with pytest.raises(ValueError):
        wants_engine_process("maybe", MESH)


async def test_server_in_process_mode(start_server, proc_engine, astronaut_jpeg, cat_jpeg):
    """REST and a live session on the proxy engine; a killed child costs the session at most
    a frame or two and the stream goes on."""
    srv = await start_server(engine=proc_engine)
    async with aiohttp.ClientSession() as http:
        form = aiohttp.FormData()
        form.add_field("source_image", cat_jpeg, filename="cat.jpg", content_type="image/jpeg")
        form.add_field("emotion", "sad")
        async with http.post(srv.base_url + "/render", data=form) as r:
            assert r.status == 422 and (await r.json())["error"]["code"] == "no_face"

        async def render() -> tuple[int, dict]:
            form = aiohttp.FormData()
            form.add_field("source_image", astronaut_jpeg, filename="a.jpg",
                           content_type="image/jpeg")
            form.add_field("emotion", "happy")
            async with http.post(srv.base_url + "/render", data=form) as r:
                return r.status, await r.json()

        assert (await render())[0] == 200
        dead = proc_engine.pid
        os.kill(dead, signal.SIGKILL)  # dies between requests
        await wait_until(lambda: _dead(dead))
        status, body = await render()  # the call that finds it dead: a clean 500, not a hang
        assert status == 500 and body["error"]["code"] == "engine_crashed"
        assert (await render())[0] == 200  # a new child, the portrait prepared again
        c = await SessionClient.create(http, srv.base_url, astronaut_jpeg, fps=25, size=256)
        await c.connect()
        await c.send({"type": "subscribe_frames", "format": "jpeg", "fps": 25})
        for _ in range(5):
            await asyncio.wait_for(c.binary.get(), 30)
        restarts = proc_engine.restarts
        os.kill(proc_engine.pid, signal.SIGKILL)
        async with http.get(srv.base_url + "/health") as r:  # whatever the child's state
            assert r.status == 200 and (await r.json())["engine"] == "mesh"
        await wait_until(lambda: proc_engine.restarts > restarts)  # the session's tick saw it
        while not c.binary.empty():
            c.binary.get_nowait()
        for _ in range(10):  # frames keep coming from the restarted child
            _, data = await asyncio.wait_for(c.binary.get(), 10)
            assert Image.open(io.BytesIO(data)).size == (256, 256)
        assert proc_engine.restarts >= 1
        async with http.get(f"{srv.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200
        await c.close()


async def test_server_shutdown_with_sessions_open(start_server, astronaut_jpeg):
    """The server owns its engine process: stopping it with a live session is fast and ends
    the child, and no shared-memory segment stays behind."""
    eng = ProcessEngine(MESH)
    pid = eng.pid
    srv = await start_server(engine=eng)
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, srv.base_url, astronaut_jpeg, size="256")
        await c.connect()
        await c.start_video()
        await c.next_video_frame()
        t = time.monotonic()
        await srv.stop()
        took = time.monotonic() - t
        assert took < FAST_SHUTDOWN_S, f"shutdown took {took:.2f} s"
        assert await c.wait_closed(FAST_SHUTDOWN_S) == 1001
        await c.close()
    assert _gone(pid) and eng.pid is None and not _segments()

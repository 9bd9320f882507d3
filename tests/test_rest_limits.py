"""Bounded engine queue (503 + Retry-After), output expiry, shared prepares, off-loop work."""
from __future__ import annotations

import asyncio
import os
import threading
import time
from pathlib import Path

import aiohttp

from avatar_testkit.wait import wait_until
from streamer.http.outputs import OutputStore


def form(image: bytes, emotion: str = "happy") -> aiohttp.FormData:
    fd = aiohttp.FormData()
    fd.add_field("source_image", image, filename="p.jpg", content_type="image/jpeg")
    fd.add_field("emotion", emotion)
    return fd


async def test_full_queue_answers_503_with_retry_after(start_server, grace_hopper_jpeg):
    srv = await start_server(engine_queue=2)
    gate = threading.Event()
    # Occupy the real engine thread and its whole queue with work that waits on the gate.
    blockers = [asyncio.ensure_future(srv.state.worker.call(gate.wait, 60.0)) for _ in range(2)]
    await wait_until(lambda: srv.state.worker.stats.pending == 2)
    try:
        async with aiohttp.ClientSession() as http:
            for path, extra in (("/render", "emotion"), ("/render/batch", "emotions")):
                fd = aiohttp.FormData()
                fd.add_field("source_image", grace_hopper_jpeg, filename="p.jpg")
                fd.add_field(extra, "happy")
                async with http.post(srv.base_url + path, data=fd) as r:
                    assert r.status == 503, await r.text()
                    assert int(r.headers["Retry-After"]) >= 1
                    assert (await r.json())["error"]["code"] == "busy"
            # The event loop stayed free while the engine was stuck.
            async with http.get(srv.base_url + "/health") as r:
                assert r.status == 200
            gate.set()
            await asyncio.gather(*blockers)
            async with http.post(srv.base_url + "/render", data=form(grace_hopper_jpeg)) as r:
                assert r.status == 200, await r.text()
    finally:
        gate.set()
        await asyncio.gather(*blockers, return_exceptions=True)
    assert srv.state.worker.stats.rejected >= 2


async def test_outputs_expire_after_the_ttl(start_server, astronaut_jpeg):
    srv = await start_server(output_ttl_s=1.0)
    async with aiohttp.ClientSession() as http:
        async with http.post(srv.base_url + "/render", data=form(astronaut_jpeg)) as r:
            assert r.status == 200
            body = await r.json()
        async with http.get(srv.base_url + "/output/" + body["filename"]) as r:
            assert r.status == 200
        path = Path(body["output_path"])
        assert path.parent == Path(srv.state.config.output_dir).resolve()
        # Age the file instead of sleeping through the TTL; the sweeper runs every second.
        old = time.time() - 5
        os.utime(path, (old, old))
        async with http.get(srv.base_url + "/output/" + body["filename"]) as r:
            assert r.status == 404
        await wait_until(lambda: not path.exists(), message="the sweeper never removed the file")


def test_expiry_only_touches_our_own_names(tmp_path):
    store = OutputStore(tmp_path, ttl_s=10)
    name, path = store.write(b"x", "png")
    foreign = tmp_path / "notes.png"
    foreign.write_bytes(b"y")
    old = time.time() - 60
    for p in (path, foreign):
        os.utime(p, (old, old))
    assert store.expire() == 1
    assert not path.exists() and foreign.exists()
    fresh, fresh_path = store.write(b"z", "webp")
    assert store.expire() == 0 and store.resolve(fresh) == fresh_path
    assert len(fresh.split(".")[0]) == 32 and fresh != name


async def test_concurrent_requests_for_one_new_photo_prepare_once(start_server, astronaut_jpeg):
    srv = await start_server()
    async with aiohttp.ClientSession() as http:
        async def one(emotion: str) -> int:
            async with http.post(srv.base_url + "/render", data=form(astronaut_jpeg, emotion)) as r:
                return r.status

        statuses = await asyncio.gather(*(one(e) for e in ("happy", "sad", "angry", "fearful")))
    assert statuses == [200] * 4
    assert srv.state.cache.misses == 1

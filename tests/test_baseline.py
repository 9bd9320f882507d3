"""The `baseline` option end to end: absolute expressions by default, "as photographed" on request.

The astronaut smiles with her teeth showing, so "neutral" means different faces under the two
baselines: absolute (default) removes the smile, "photo" keeps the photo as it is.
"""
from __future__ import annotations

import asyncio
import io

import aiohttp
import numpy as np
import pytest
from PIL import Image

from avatar_testkit.pyclient import SessionClient, portrait_form as form

SMALL = {"size": "256", "idle_motion": "false"}


def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.int16)


async def _render_png(http: aiohttp.ClientSession, base_url: str, image: bytes, **fields: str) -> np.ndarray:
    async with http.post(base_url + "/render", headers={"Accept": "image/png"},
                         data=form(image, **fields)) as r:
        assert r.status == 200, await r.text()
        return decode(await r.read())


def _lower_face(frame: np.ndarray) -> np.ndarray:
    """The band of the crop that holds the mouth (the crop is centred on the face)."""
    h = frame.shape[0]
    return frame[int(0.55 * h):int(0.8 * h), int(0.3 * h):int(0.7 * h)]


async def test_rest_default_is_absolute_and_photo_keeps_the_photo(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        default = await _render_png(http, server.base_url, astronaut_jpeg, emotion="neutral")
        neutral = await _render_png(http, server.base_url, astronaut_jpeg, emotion="neutral",
                                    baseline="neutral")
        photo = await _render_png(http, server.base_url, astronaut_jpeg, emotion="neutral",
                                  baseline="PHOTO")
    # The default is the absolute baseline, byte for byte.
    assert np.array_equal(default, neutral)
    # Absolute neutral removes the photo's smile: the mouth region changes visibly.
    assert np.abs(_lower_face(neutral) - _lower_face(photo)).mean() > 2.0


async def test_batch_takes_the_baseline_for_every_frame(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        async with http.post(server.base_url + "/render/batch",
                             data=form(astronaut_jpeg, emotions="neutral,happy",
                                       baseline="photo")) as r:
            assert r.status == 200, await r.text()
            results = (await r.json())["results"]
        assert [x["emotion"] for x in results] == ["neutral", "happy"]
        single = await _render_png(http, server.base_url, astronaut_jpeg, emotion="neutral",
                                   baseline="photo")
        async with http.get(server.base_url + "/output/" + results[0]["filename"]) as r:
            batch_neutral = decode(await r.read())
    assert np.array_equal(batch_neutral, single)


@pytest.mark.parametrize("route,fields", [
    ("/render", {"emotion": "happy"}),
    ("/render/batch", {"emotions": "happy,sad"}),
    ("/sessions", {}),
])
@pytest.mark.parametrize("bad", ["relative", "neutral,photo", "as photographed", "x" * 300])
async def test_a_bad_baseline_is_a_clear_400(server, astronaut_jpeg, route, fields, bad):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.base_url + "/sessions") as r:
            before = (await r.json())["sessions"]
        async with http.post(server.base_url + route,
                             data=form(astronaut_jpeg, baseline=bad, **fields)) as r:
            body = await r.json()
            assert r.status == 400, body
    assert body["error"]["code"] == "invalid_baseline"
    assert "neutral, photo" in body["error"]["message"]
    # The server still serves, and the failed POST created no session.
    async with aiohttp.ClientSession() as http:
        async with http.get(server.base_url + "/sessions") as r:
            assert (await r.json())["sessions"] == before


async def _first_frame(c: SessionClient) -> np.ndarray:
    await c.send({"type": "subscribe_frames", "format": "webp", "quality": 100})
    # Frames are only ever the newest; the face is static (idle off), so any frame will do.
    _, data = await asyncio.wait_for(c.binary.get(), timeout=30)
    return decode(data)


async def test_sessions_render_their_baseline(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        absolute = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        photo = await SessionClient.create(http, server.base_url, astronaut_jpeg,
                                           baseline="photo", **SMALL)
        try:
            assert absolute.info["baseline"] == "neutral" and photo.info["baseline"] == "photo"
            hello_abs = await absolute.connect()
            hello_photo = await photo.connect()
            assert hello_abs["baseline"] == "neutral" and hello_photo["baseline"] == "photo"
            async with http.get(f"{server.base_url}/sessions/{photo.session_id}") as r:
                assert (await r.json())["baseline"] == "photo"
            await absolute.wait_for("ready", timeout=30)
            await photo.wait_for("ready", timeout=30)
            frame_abs = await _first_frame(absolute)
            frame_photo = await _first_frame(photo)
            assert np.abs(_lower_face(frame_abs) - _lower_face(frame_photo)).mean() > 2.0
        finally:
            for c in (absolute, photo):
                await c.close()
                async with http.delete(f"{server.base_url}/sessions/{c.session_id}"):
                    pass

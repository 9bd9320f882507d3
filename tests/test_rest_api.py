"""The seed's REST API against the real server and the real mesh engine."""
from __future__ import annotations

import io
import json

import aiohttp
import numpy as np
import pytest
from PIL import Image

from avatar_testkit.pyclient import portrait_form as form

SEED_FIELDS = {"output_path", "filename", "emotion", "intensity", "latency_ms", "gpu_used",
               "model_version", "width", "height"}




def decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


@pytest.fixture(scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def test_health_reports_engine_and_gpu_facts(server, http):
    async with http.get(server.base_url + "/health") as r:
        assert r.status == 200
        body = await r.json()
    assert body["status"] == "healthy"
    assert body["model_loaded"] is True
    assert body["engine"] == "mesh"
    assert isinstance(body["gpu_available"], bool)
    assert {"gpu_name", "cuda_version", "version"} <= body.keys()
    if not body["gpu_available"]:
        assert body["gpu_name"] is None


async def test_render_returns_seed_fields_and_a_fetchable_file(server, http, grace_hopper_jpeg):
    async with http.post(server.base_url + "/render",
                         data=form(grace_hopper_jpeg, emotion="happy", intensity="0.8")) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert set(body) == SEED_FIELDS
    assert body["emotion"] == "happy" and body["intensity"] == 0.8
    assert (body["width"], body["height"]) == (512, 512)
    assert body["gpu_used"] is False
    assert body["filename"].endswith(".png") and len(body["filename"]) == 36
    assert body["output_path"].endswith(body["filename"])

    async with http.get(server.base_url + "/output/" + body["filename"]) as r:
        assert r.status == 200 and r.content_type == "image/png"
        png = await r.read()
    assert decode(png).shape == (512, 512, 3)

    async with http.delete(server.base_url + "/output/" + body["filename"]) as r:
        assert r.status == 200 and (await r.json())["deleted"] is True
    async with http.get(server.base_url + "/output/" + body["filename"]) as r:
        assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
    async with http.delete(server.base_url + "/output/" + body["filename"]) as r:
        assert r.status == 404


async def test_default_intensity_and_formats(server, http, grace_hopper_jpeg):
    for fmt, mime in (("jpg", "image/jpeg"), ("webp", "image/webp"), ("jpeg", "image/jpeg")):
        async with http.post(server.base_url + "/render",
                             data=form(grace_hopper_jpeg, emotion="sad", output_format=fmt)) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert body["intensity"] == 0.7
        async with http.get(server.base_url + "/output/" + body["filename"]) as r:
            assert r.content_type == mime
            assert decode(await r.read()).shape == (512, 512, 3)


@pytest.mark.parametrize("accept,mime", [("image/png", "image/png"), ("image/jpeg", "image/jpeg"),
                                         ("image/webp", "image/webp")])
async def test_accept_header_returns_image_bytes(server, http, grace_hopper_jpeg, accept, mime):
    async with http.post(server.base_url + "/render", headers={"Accept": accept},
                         data=form(grace_hopper_jpeg, emotion="surprised", intensity="1")) as r:
        assert r.status == 200
        assert r.content_type == mime
        assert float(r.headers["X-Latency-Ms"]) > 0
        frame = decode(await r.read())
    assert frame.shape == (512, 512, 3)


async def test_emotion_changes_the_pixels(server, http, grace_hopper_jpeg):
    frames = {}
    for emotion in ("neutral", "happy"):
        async with http.post(server.base_url + "/render", headers={"Accept": "image/png"},
                             data=form(grace_hopper_jpeg, emotion=emotion, intensity="1")) as r:
            frames[emotion] = decode(await r.read()).astype(np.int16)
    assert np.abs(frames["happy"] - frames["neutral"]).mean() > 0.2


async def test_full_mode_keeps_the_photo_size(server, http, grace_hopper_jpeg):
    size = Image.open(io.BytesIO(grace_hopper_jpeg)).size
    assert size != (512, 512)
    async with http.post(server.base_url + "/render",
                         data=form(grace_hopper_jpeg, emotion="angry", mode="full")) as r:
        assert r.status == 200, await r.text()
        body = await r.json()
    assert (body["width"], body["height"]) == size


@pytest.mark.parametrize("emotions", [
    ["happy", "sad", "angry"],                     # repeated fields
    '["happy", "sad", "angry"]',                   # a JSON array
    "happy,sad, angry",                            # comma-separated
])
async def test_batch_prepares_once_and_renders_one_frame_per_call(start_server, grace_hopper_jpeg, emotions):
    srv = await start_server()
    renders: list[int] = []
    prepares: list[int] = []
    observe = srv.state.worker.observer

    def spy(op: str, seconds: float, batch: int) -> None:
        (renders if op == "render" else prepares).append(batch)
        observe(op, seconds, batch)

    srv.state.worker.observer = spy
    async with aiohttp.ClientSession() as http:
        async with http.post(srv.base_url + "/render/batch",
                             data=form(grace_hopper_jpeg, emotions=emotions, intensity="0.9")) as r:
            assert r.status == 200, await r.text()
            body = await r.json()
        assert set(body) == {"results"}
        results = body["results"]
        assert [x["emotion"] for x in results] == ["happy", "sad", "angry"]
        assert all(set(x) == SEED_FIELDS and x["intensity"] == 0.9 for x in results)
        assert len({x["filename"] for x in results}) == 3
        for x in results:
            async with http.get(srv.base_url + "/output/" + x["filename"]) as r:
                assert r.status == 200
    # One engine call per frame: a live session's tick can run between two of them.
    assert prepares == [1] and renders == [1, 1, 1]


async def test_same_photo_twice_skips_prepare(start_server, astronaut_jpeg):
    srv = await start_server()
    async with aiohttp.ClientSession() as http:
        for _ in range(2):
            async with http.post(srv.base_url + "/render",
                                 data=form(astronaut_jpeg, emotion="fearful")) as r:
                assert r.status == 200
    assert (srv.state.cache.misses, srv.state.cache.hits) == (1, 1)


async def test_metrics_expose_seed_and_engine_series(server, http, grace_hopper_jpeg):
    async with http.post(server.base_url + "/render", data=form(grace_hopper_jpeg, emotion="happy")) as r:
        assert r.status == 200
    async with http.post(server.base_url + "/render", data=form(grace_hopper_jpeg, emotion="bogus")) as r:
        assert r.status == 400
    async with http.get(server.base_url + "/metrics") as r:
        assert r.status == 200 and r.content_type == "text/plain"
        text = await r.text()
    assert 'liveportrait_requests_total{endpoint="/render",method="POST",status="200"}' in text
    assert 'liveportrait_errors_total{endpoint="/render",status="400"}' in text
    assert "liveportrait_request_duration_seconds_bucket" in text
    assert 'liveportrait_engine_seconds_count{op="render"}' in text
    assert 'liveportrait_engine_seconds_count{op="prepare"}' in text


async def test_unknown_route_and_wrong_method_are_json(server, http):
    async with http.get(server.base_url + "/no/such/route") as r:
        assert r.status == 404
        assert (await r.json())["error"]["code"] == "not_found"
    async with http.get(server.base_url + "/render") as r:
        assert r.status == 405
        body = await r.json()
    assert body["error"]["code"] == "method_not_allowed" and "POST" in body["error"]["message"]
    async with http.put(server.base_url + "/health") as r:
        assert r.status == 405 and r.content_type == "application/json"


async def test_error_body_shape_is_stable(server, http):
    async with http.post(server.base_url + "/render", data=b"x",
                         headers={"Content-Type": "text/plain"}) as r:
        body = json.loads(await r.text())
    assert r.status == 415
    assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message"}
    assert body["error"]["status"] == r.status

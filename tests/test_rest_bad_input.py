"""Every bad input from the issue gets a clear JSON 4xx, and the next valid request still works."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np
import pytest
from PIL import Image
from yarl import URL

from streamer.samples import sample_portrait_bytes

GOOD = sample_portrait_bytes("grace_hopper")


def png_bytes(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def multipart(fields: dict[str, Any]) -> aiohttp.FormData:
    fd = aiohttp.FormData()
    for name, value in fields.items():
        if isinstance(value, bytes):
            fd.add_field(name, value, filename="upload.bin", content_type="application/octet-stream")
        else:
            for v in value if isinstance(value, list) else [value]:
                fd.add_field(name, v)
    return fd


def bad_images() -> dict[str, tuple[bytes, int, str]]:
    """name -> (bytes, expected status, expected code)"""
    truncated = GOOD[: len(GOOD) // 2]
    garbage_jpeg = b"\xff\xd8\xff\xe0" + bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    # 10000x5000 one-bit pixels: a few KB of PNG, 50 Mpx once decoded (limit: 40 Mpx).
    bomb = png_bytes(Image.new("1", (10000, 5000)))
    assert len(bomb) < 200_000
    gray = png_bytes(Image.new("RGB", (320, 240), (128, 128, 128)))
    tiny = png_bytes(Image.new("RGB", (8, 8), (200, 150, 120)))
    return {
        "empty": (b"", 400, "empty_file"),
        "text": (b"hello, this is not an image\n" * 20, 422, "invalid_image"),
        "truncated_jpeg": (truncated, 422, "invalid_image"),
        "garbage_with_jpeg_magic": (garbage_jpeg, 422, "invalid_image"),
        "too_small": (tiny, 422, "invalid_image"),
        "decompression_bomb": (bomb, 413, "image_too_large"),
        "no_face_gray": (gray, 422, "no_face"),
    }


@pytest.fixture(scope="module")
async def http():
    async with aiohttp.ClientSession() as session:
        yield session


async def assert_error(r: aiohttp.ClientResponse, status: int, code: str | None = None) -> dict:
    assert r.status == status, await r.text()
    assert r.content_type == "application/json"
    body = await r.json()
    assert set(body) == {"error"} and isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    # Never a traceback or a file path in a message.
    assert "Traceback" not in body["error"]["message"] and "/work/" not in body["error"]["message"]
    if code is not None:
        assert body["error"]["code"] == code, body
    return body


async def assert_still_serving(http: aiohttp.ClientSession, base_url: str) -> None:
    async with http.post(base_url + "/render", headers={"Accept": "image/png"},
                         data=multipart({"source_image": GOOD, "emotion": "happy"})) as r:
        assert r.status == 200, await r.text()
        assert r.content_type == "image/png"


@pytest.mark.parametrize("case", list(bad_images()))
async def test_bad_image(server, http, case):
    data, status, code = bad_images()[case]
    async with http.post(server.base_url + "/render",
                         data=multipart({"source_image": data, "emotion": "happy"})) as r:
        await assert_error(r, status, code)
    await assert_still_serving(http, server.base_url)


async def test_cat_has_no_face(server, http, cat_jpeg):
    async with http.post(server.base_url + "/render",
                         data=multipart({"source_image": cat_jpeg, "emotion": "sad"})) as r:
        body = await assert_error(r, 422, "no_face")
    assert "no face" in body["error"]["message"]
    # The batch endpoint and its one prepare give the same answer.
    async with http.post(server.base_url + "/render/batch",
                         data=multipart({"source_image": cat_jpeg, "emotions": "sad,happy"})) as r:
        await assert_error(r, 422, "no_face")
    await assert_still_serving(http, server.base_url)


@pytest.mark.parametrize("path,fields,status,code", [
    ("/render", {"emotion": "happy"}, 400, "missing_field"),
    ("/render", {"source_image": GOOD}, 400, "missing_field"),
    ("/render/batch", {"source_image": GOOD}, 400, "missing_field"),
    ("/render/batch", {"emotions": "happy"}, 400, "missing_field"),
    ("/render", {"source_image": GOOD, "emotion": "joyful"}, 400, "invalid_emotion"),
    ("/render/batch", {"source_image": GOOD, "emotions": "happy,joyful"}, 400, "invalid_emotion"),
    ("/render/batch", {"source_image": GOOD, "emotions": "[\"happy\", 3]"}, 400, "invalid_emotion"),
    ("/render/batch", {"source_image": GOOD, "emotions": "[not json"}, 400, "invalid_emotion"),
    ("/render/batch", {"source_image": GOOD, "emotions": ","}, 400, "invalid_emotion"),
    ("/render/batch", {"source_image": GOOD, "emotions": ",".join(["sad"] * 17)}, 400, "too_many_emotions"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "intensity": "nan"}, 400, "invalid_intensity"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "intensity": "-0.1"}, 400, "invalid_intensity"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "intensity": "1.01"}, 400, "invalid_intensity"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "intensity": "inf"}, 400, "invalid_intensity"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "intensity": "very"}, 400, "invalid_intensity"),
    ("/render/batch", {"source_image": GOOD, "emotions": "sad", "intensity": "NaN"}, 400, "invalid_intensity"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "output_format": "gif"}, 400,
     "invalid_format"),
    ("/render", {"source_image": GOOD, "emotion": "happy", "mode": "zoom"}, 400, "invalid_mode"),
])
async def test_bad_field(server, http, path, fields, status, code):
    async with http.post(server.base_url + path, data=multipart(fields)) as r:
        body = await assert_error(r, status, code)
    if code == "invalid_emotion" or (code == "missing_field" and "emotion" in body["error"]["message"]):
        for name in ("neutral", "happy", "sad", "surprised", "angry", "disgusted", "fearful"):
            assert name in body["error"]["message"]
    await assert_still_serving(http, server.base_url)


async def test_not_multipart_and_malformed_multipart(server, http):
    async with http.post(server.base_url + "/render", json={"emotion": "happy"}) as r:
        await assert_error(r, 415, "unsupported_media_type")
    # urlencoded with bytes that are not UTF-8 (found by tests/test_fuzz_hostile.py)
    async with http.post(server.base_url + "/render", data=b"emotion=happy&source_image=\x89PNG\xff",
                         headers={"Content-Type": "application/x-www-form-urlencoded"}) as r:
        await assert_error(r, 400, "bad_request")
    bad = b"--XYZ\r\nContent-Disposition: form-data; name=\"emotion\"\r\n\r\nhappy"  # never closed
    async with http.post(server.base_url + "/render", data=bad,
                         headers={"Content-Type": "multipart/form-data; boundary=XYZ"}) as r:
        assert 400 <= r.status < 500
        await assert_error(r, r.status)
    await assert_still_serving(http, server.base_url)


async def test_upload_over_the_size_limit(start_server):
    srv = await start_server(max_upload_mb=0.5)
    big = GOOD + b"\0" * (600 * 1024)
    async with aiohttp.ClientSession() as http:
        # With a Content-Length: refused before the body is read.
        async with http.post(srv.base_url + "/render",
                             data=multipart({"source_image": big, "emotion": "happy"})) as r:
            body = await assert_error(r, 413)
        assert "0.5 MB" in body["error"]["message"]

        # Chunked (no Content-Length): refused while streaming.
        boundary = "lpa-test-boundary"
        body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"emotion\"\r\n\r\nhappy\r\n"
                f"--{boundary}\r\nContent-Disposition: form-data; name=\"source_image\"; "
                f"filename=\"big.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + big + \
            f"\r\n--{boundary}--\r\n".encode()

        async def chunks():
            for i in range(0, len(body), 65536):
                yield body[i:i + 65536]

        async with http.post(srv.base_url + "/render", data=chunks(),
                             headers={"Content-Type": f"multipart/form-data; boundary={boundary}"}) as r:
            await assert_error(r, 413, "file_too_large")
        await assert_still_serving(http, srv.base_url)


@pytest.mark.parametrize("raw", [
    "..%2F..%2F..%2Fetc%2Fpasswd",
    "%2E%2E%2Fsecret.txt",
    "secret.txt",
    "%2Fetc%2Fpasswd",
    "..%5C..%5Cwindows%5Cwin.ini",
    "0123456789abcdef0123456789abcdef.png%00.txt",
    "0123456789abcdef0123456789abcdef.png",
    "0123456789ABCDEF0123456789ABCDEF.png",
])
async def test_output_path_tricks(server, http, raw):
    out_dir = Path(server.state.config.output_dir)
    secret = out_dir / "secret.txt"
    secret.write_text("not for clients")
    outside = out_dir.parent / "secret.txt"
    outside.write_text("not for clients either")
    try:
        for method in ("GET", "DELETE"):
            url = URL(server.base_url + "/output/" + raw, encoded=True)
            async with http.request(method, url) as r:
                await assert_error(r, 404)
        assert secret.exists() and outside.exists()
    finally:
        secret.unlink()
        outside.unlink()


async def test_unknown_route_is_json_404(server, http):
    for method, path in (("GET", "/nope"), ("POST", "/render/nope"), ("GET", "/output"),
                         ("DELETE", "/output/")):
        async with http.request(method, server.base_url + path) as r:
            await assert_error(r, 404, "not_found")
    await assert_still_serving(http, server.base_url)

"""Issue 15, items 6 and 10: every transport that decodes a photo sees it as a viewer does.

EXIF orientation 3, 6 and 8 on a real portrait (the astronaut, cropped to portrait shape,
stored rotated with the tag written by Pillow): the face is found and the output matches
the render of the upright photo, through /render (JSON and direct image, crop and full),
/render/batch, POST /sessions (frames over the WebSocket) and the CLI's render.
High-bit-depth greyscale and colour PNG/TIFF decode to the right 8-bit values.
"""
from __future__ import annotations

import io

import aiohttp
import cv2
import numpy as np
import pytest
from PIL import Image, ImageOps

from avatar_testkit.pyclient import SessionClient, portrait_form
from streamer.http.decode import decode_image
from streamer.samples import sample_portrait_bytes

ORIENTATIONS = (3, 6, 8)
# What the camera stored, given the upright picture; EXIF says how to undo it.
_STORED = {3: Image.Transpose.ROTATE_180, 6: Image.Transpose.ROTATE_90, 8: Image.Transpose.ROTATE_270}
LIMIT = 40_000_000


@pytest.fixture(scope="module")
def upright() -> Image.Image:
    img = Image.open(io.BytesIO(sample_portrait_bytes("astronaut"))).convert("RGB")
    return img.crop((64, 0, 448, 512))  # 384x512: portrait shape, so a sideways result shows


def _jpeg(img: Image.Image, orientation: int | None = None) -> bytes:
    out = io.BytesIO()
    if orientation is None:
        img.save(out, format="JPEG", quality=95)
    else:
        exif = Image.Exif()
        exif[0x0112] = orientation
        img.transpose(_STORED[orientation]).save(out, format="JPEG", quality=95, exif=exif.tobytes())
    return out.getvalue()


@pytest.fixture(scope="module")
def photos(upright) -> dict:
    return {o: _jpeg(upright, o) for o in ORIENTATIONS} | {None: _jpeg(upright)}


def _rgb(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(np.float32)


def _assert_upright(out: np.ndarray, ref: np.ndarray, what: str) -> None:
    """out is ref (up to JPEG noise), and clearly closer to it than a turned ref would be."""
    assert out.shape == ref.shape, f"{what}: {out.shape} vs upright {ref.shape}"
    same = float(np.abs(out - ref).mean())
    turned = float(np.abs(np.rot90(ref, 2) - ref).mean())
    assert same < 0.25 * turned, f"{what}: differs from the upright render by {same:.1f} (turned: {turned:.1f})"


def test_decode_applies_orientation(photos, upright):
    ref = np.asarray(upright).astype(np.float32)
    for o in ORIENTATIONS:
        stored = Image.open(io.BytesIO(photos[o]))
        assert stored.getexif()[0x0112] == o
        assert (stored.size == upright.size) == (o == 3)  # 6 and 8 are stored sideways
        _assert_upright(decode_image(photos[o], LIMIT).astype(np.float32), ref, f"decode {o}")


async def test_rest_renders_rotated_photos_upright(server, photos):
    async with aiohttp.ClientSession() as http:
        async def render(photo: bytes, accept: str | None, **fields) -> np.ndarray:
            headers = {"Accept": accept} if accept else {}
            async with http.post(server.base_url + "/render", headers=headers,
                                 data=portrait_form(photo, emotion="happy", **fields)) as r:
                assert r.status == 200, await r.text()
                if accept:
                    return _rgb(await r.read())
                name = (await r.json())["filename"]
            async with http.get(server.base_url + "/output/" + name) as r:
                return _rgb(await r.read())

        async def batch(photo: bytes) -> list[np.ndarray]:
            async with http.post(server.base_url + "/render/batch",
                                 data=portrait_form(photo, emotions="happy,sad")) as r:
                assert r.status == 200, await r.text()
                names = [x["filename"] for x in (await r.json())["results"]]
            out = []
            for n in names:
                async with http.get(server.base_url + "/output/" + n) as r:
                    out.append(_rgb(await r.read()))
            return out

        refs = {"json": await render(photos[None], None), "png": await render(photos[None], "image/png"),
                "full": await render(photos[None], "image/png", mode="full")}
        ref_batch = await batch(photos[None])
        assert refs["full"].shape[:2] == (512, 384)
        for o in ORIENTATIONS:
            _assert_upright(await render(photos[o], None), refs["json"], f"/render json, orientation {o}")
            _assert_upright(await render(photos[o], "image/png"), refs["png"], f"/render png, orientation {o}")
            _assert_upright(await render(photos[o], "image/png", mode="full"), refs["full"],
                            f"/render full, orientation {o}")
            for got, ref in zip(await batch(photos[o]), ref_batch):
                _assert_upright(got, ref, f"/render/batch, orientation {o}")


async def test_sessions_stream_rotated_photos_upright(server, photos):
    async def first_frame(http: aiohttp.ClientSession, photo: bytes) -> np.ndarray:
        c = await SessionClient.create(http, server.base_url, photo, idle_motion="false", size=256)
        try:
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 95})
            _, data = await c.binary.get()
            return _rgb(data)
        finally:
            await c.close()
            async with http.delete(f"{server.base_url}/sessions/{c.session_id}"):
                pass

    async with aiohttp.ClientSession() as http:
        ref = await first_frame(http, photos[None])
        for o in ORIENTATIONS:
            _assert_upright(await first_frame(http, photos[o]), ref, f"session frame, orientation {o}")


def test_cli_render_applies_orientation(photos, tmp_path):
    from streamer.cli import main

    outs = {}
    for o in (None, *ORIENTATIONS):
        src = tmp_path / f"photo_{o}.jpg"
        src.write_bytes(photos[o])
        outs[o] = tmp_path / f"out_{o}.png"
        assert main(["render", str(src), "--emotion", "happy", "-o", str(outs[o])]) == 0
    ref = _rgb(outs[None].read_bytes())
    for o in ORIENTATIONS:
        _assert_upright(_rgb(outs[o].read_bytes()), ref, f"CLI render, orientation {o}")


# ---------------------------------------------------------------- high bit depth

@pytest.fixture(scope="module")
def grey8(upright) -> np.ndarray:
    return np.asarray(ImageOps.grayscale(upright))


def _high_depth(grey8: np.ndarray, rgb8: np.ndarray) -> dict[str, tuple[bytes, np.ndarray]]:
    """name -> (file bytes, the 8-bit RGB it should decode to)."""
    g16 = grey8.astype(np.uint16) * 257
    c16 = rgb8.astype(np.uint16) * 257
    grey_rgb = np.repeat(grey8[:, :, None], 3, axis=2)
    out = {}
    out["png 16-bit grey"] = (cv2.imencode(".png", g16)[1].tobytes(), grey_rgb)
    out["tiff 16-bit grey"] = (cv2.imencode(".tiff", g16)[1].tobytes(), grey_rgb)
    out["png 16-bit rgb"] = (cv2.imencode(".png", c16[:, :, ::-1])[1].tobytes(), rgb8)
    out["tiff 16-bit rgb"] = (cv2.imencode(".tiff", c16[:, :, ::-1])[1].tobytes(), rgb8)
    b = io.BytesIO()
    Image.fromarray((grey8 / 255.0).astype(np.float32)).save(b, format="TIFF")
    out["tiff float grey"] = (b.getvalue(), grey_rgb)
    b = io.BytesIO()
    Image.fromarray(g16.astype(np.int32)).save(b, format="TIFF")
    out["tiff 32-bit int grey"] = (b.getvalue(), grey_rgb)
    b = io.BytesIO()
    Image.fromarray(g16).save(b, format="PNG")
    out["png 16-bit grey (Pillow)"] = (b.getvalue(), grey_rgb)
    return out


def test_high_bit_depth_decodes_to_the_right_values(grey8, upright):
    for name, (data, want) in _high_depth(grey8, np.asarray(upright)).items():
        got = decode_image(data, LIMIT)
        assert got.shape == want.shape, name
        assert np.abs(got.astype(int) - want.astype(int)).max() <= 1, name


async def test_high_bit_depth_portraits_find_a_face(server, grey8, upright):
    async with aiohttp.ClientSession() as http:
        for name, (data, _) in _high_depth(grey8, np.asarray(upright)).items():
            for path, fields in (("/render", {"emotion": "happy"}), ("/sessions", {})):
                async with http.post(server.base_url + path, data=portrait_form(data, **fields)) as r:
                    assert r.status in (200, 201), f"{name} {path}: {await r.text()}"
                    if path == "/sessions":
                        sid = (await r.json())["session_id"]
                        async with http.delete(f"{server.base_url}/sessions/{sid}"):
                            pass


def test_huge_photo_is_scaled_down_while_decoding(upright):
    big = io.BytesIO()
    upright.resize((3072, 4096)).save(big, format="JPEG", quality=90)
    out = decode_image(big.getvalue(), LIMIT, max_source_pixels=1_000_000)
    assert out.shape[0] * out.shape[1] <= 1_000_000 and out.shape[0] > out.shape[1]
    assert abs(out.shape[0] / out.shape[1] - 4 / 3) < 0.01
    # Sideways in the file, upright after decoding, and still within the bound.
    exif = Image.Exif()
    exif[0x0112] = 6
    side = io.BytesIO()
    upright.resize((3072, 4096)).transpose(Image.Transpose.ROTATE_90).save(side, format="JPEG", quality=90,
                                                                           exif=exif.tobytes())
    out6 = decode_image(side.getvalue(), LIMIT, max_source_pixels=1_000_000)
    assert out6.shape == out.shape

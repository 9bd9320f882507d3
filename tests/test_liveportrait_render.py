"""The liveportrait Engine end to end on the seed-1 synthetic weights (CPU, float32).

Synthetic weights draw noise, not faces, so this checks plumbing: FaceMesh crop, features kept
per source, one batched forward for several jobs, shapes, finiteness, crop and full modes,
paste-back outside the face, errors, and the real server answering with this engine.
"""
from __future__ import annotations

import io
from typing import Any

import aiohttp
import numpy as np
import pytest
import torch
from PIL import Image

from engine.api import EngineError, InvalidImageError, NoFaceError
from engine.liveportrait import crop as cropping
from engine.liveportrait import load_liveportrait_engine
from engine.motion import Motion
from lp_fixtures import needs_reference, seed1_checkpoints

pytestmark = needs_reference


@pytest.fixture(scope="module")
def lp_engine() -> Any:
    return load_liveportrait_engine(device="cpu", weights_dir=seed1_checkpoints())


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    from skimage import data

    return data.astronaut()


@pytest.fixture(scope="module")
def source(lp_engine: Any, astronaut: np.ndarray) -> Any:
    return lp_engine.prepare(astronaut)


def test_prepare_keeps_features_and_crop(source: Any, astronaut: np.ndarray) -> None:
    st = source.state
    assert tuple(st.feature_3d.shape) == (1, 32, 16, 64, 64) and st.feature_3d.dtype == torch.float32
    assert tuple(st.x_s.shape) == (1, 21, 3) and torch.isfinite(st.x_s).all()
    assert 0.05 < source.eye_ratio < 1.0 and 0.0 <= st.lip_ratio < 1.0
    # The crop square holds the whole detected face box, and is 2.3 x larger than the face.
    x0, y0, x1, y1 = source.face_box
    corners = np.array([[x0, y0, 1], [x1, y0, 1], [x0, y1, 1], [x1, y1, 1]], dtype=np.float64)
    in_crop = (source.transform.o2c @ corners.T).T[:, :2]
    assert (in_crop > 0).all() and (in_crop < 512).all()
    side = 512 / np.hypot(*source.transform.o2c[0, :2])
    assert 1.5 * (x1 - x0) < side < 4.0 * (x1 - x0)
    m = source.paste.mask
    assert m.max() == pytest.approx(1.0, abs=1e-3) and m.min() == 0.0


def test_render_batch_full_mode(lp_engine: Any, source: Any, astronaut: np.ndarray,
                                monkeypatch: pytest.MonkeyPatch) -> None:
    # One batched forward for two jobs, pasted back into the photo. (Crop mode, 512x512, is
    # covered by the server test below; each CPU forward costs 10-30 s, so they are few.)
    seen: list[torch.Tensor] = []
    real = lp_engine.core.render_batch

    def spy(sources: Any, edits: Any) -> torch.Tensor:
        out = real(sources, edits)
        seen.append(out)
        return out

    monkeypatch.setattr(lp_engine.core, "render_batch", spy)
    happy, neutral = lp_engine.render([(source, Motion.emotion("happy", 1.0)), (source, Motion())], mode="full")
    assert len(seen) == 1 and tuple(seen[0].shape) == (2, 3, 512, 512)  # one forward for both jobs
    assert torch.isfinite(seen[0]).all()
    crops = (seen[0].clamp(0, 1) * 255).to(torch.uint8)
    assert (crops[0].int() - crops[1].int()).abs().float().mean() > 0.5  # the edit reached W and G
    x0, y0, x1, y1 = source.paste.roi
    outside = np.ones(astronaut.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    inner = source.paste.mask[..., 0] > 0.999
    for full in (happy, neutral):
        assert full.shape == astronaut.shape and full.dtype == np.uint8
        assert np.array_equal(full[outside], astronaut[outside])  # untouched beyond the crop
        changed = np.abs(full[y0:y1, x0:x1].astype(int) - astronaut[y0:y1, x0:x1].astype(int))
        assert changed[inner].mean() > 5  # the face region is the rendered crop


def test_bad_inputs_are_clear_errors(lp_engine: Any, source: Any) -> None:
    from skimage import data

    with pytest.raises(NoFaceError):
        lp_engine.prepare(data.chelsea())
    with pytest.raises(InvalidImageError):
        lp_engine.prepare(np.zeros((8, 8, 3), np.uint8))
    with pytest.raises(InvalidImageError):
        lp_engine.prepare(np.zeros((64, 64), np.uint8))
    with pytest.raises(EngineError, match="mode"):
        lp_engine.render([(source, Motion())], mode="sideways")
    with pytest.raises(EngineError, match="size"):
        lp_engine.render([(source, Motion())], size=4)
    twin = lp_engine.prepare(np.ascontiguousarray(source.image))
    lp_engine.release(twin)
    with pytest.raises(EngineError, match="released"):
        lp_engine.render([(twin, Motion())])


def test_feather_mask_is_smooth_and_centred() -> None:
    m = cropping.feather_mask(512)
    assert m[256, 256] == 1.0 and m[0, 0] == 0.0 and m[256, 0] == 0.0
    assert np.abs(np.diff(m, axis=1)).max() < 0.03  # no hard seam (smoothstep over 72 px)
    np.testing.assert_array_equal(m, m[::-1, ::-1])


async def test_server_serves_the_liveportrait_engine(lp_engine: Any, start_server: Any,
                                                     astronaut_jpeg: bytes) -> None:
    srv = await start_server(engine=lp_engine)
    async with aiohttp.ClientSession() as http:
        async with http.get(srv.base_url + "/health") as r:
            health = await r.json()
        assert r.status == 200 and health["model_loaded"] is True and health["engine"] == "liveportrait"
        form = aiohttp.FormData()
        form.add_field("source_image", astronaut_jpeg, filename="a.jpg", content_type="image/jpeg")
        form.add_field("emotion", "happy")
        form.add_field("intensity", "0.6")
        form.add_field("output_format", "png")
        async with http.post(srv.base_url + "/render", data=form) as r:
            body = await r.json()
        assert r.status == 200, body
        assert (body["width"], body["height"]) == (512, 512) and body["gpu_used"] is False
        async with http.get(srv.base_url + "/output/" + body["filename"]) as r:
            img = Image.open(io.BytesIO(await r.read()))
        assert img.size == (512, 512)

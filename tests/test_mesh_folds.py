"""The smiling photos' folds (engine/mesh/folds.py): softened where a frame undoes the photo's smile.

On real portraits (avatar_testkit.portraits): the mid-frequency shading inside the fold mask (what a
nasolabial fold and a bunched cheek add) drops in the neutral render of a smiling photo, its fine
skin texture stays (no plastic, blurred cheek), the happy render keeps its folds byte for byte, a
photo that does not smile is rendered exactly as before, and the blend weight follows how much of
the photo's smile a frame undoes.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from avatar_testkit.portraits import available_portraits, portrait_rgb, require_portrait
from engine.facs import activation
from engine.mesh import MeshEngine
from engine.mesh import folds as F
from engine.mesh.canvas import SMILE_GAIN, coefficients
from engine.motion import Motion

SMILING = ("astronaut", "smile_teeth", "smile_outdoor", "glasses")
NOT_SMILING = ("grace_hopper", "surprised")



@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module")
def sources(engine: MeshEngine) -> dict:
    return {n: engine.prepare(portrait_rgb(n)) for n in (*SMILING, *NOT_SMILING) if n in available_portraits()}


def _without_folds(engine: MeshEngine, src, motion: Motion) -> np.ndarray:
    """The same render with the canvas's folds taken away (the engine before folds.py)."""
    keep = src.crop
    src.crop = dataclasses.replace(keep, folds=None)
    try:
        return engine.render([(src, motion)])[0]
    finally:
        src.crop = keep


def _luma(img: np.ndarray) -> np.ndarray:
    return img.astype(np.float32) @ np.array([0.299, 0.587, 0.114], np.float32)


def _bands(img: np.ndarray, mask: np.ndarray, d: float) -> tuple[float, float]:
    """(mid-band, fine) RMS of the luminance over the mask: a fold's shading, and skin texture.
    The band's blurs are normalised over the mask's region, so the lips and nostrils next to it
    (never corrected) do not count."""
    y = _luma(img)
    fine = y - cv2.GaussianBlur(y, (0, 0), 1.0)
    w = (mask > 0.02).astype(np.float32)

    def blur(sigma: float) -> np.ndarray:
        return cv2.GaussianBlur(y * w, (0, 0), sigma) / np.maximum(cv2.GaussianBlur(w, (0, 0), sigma), 1e-3)

    mid = blur(0.02 * d) - blur(0.2 * d)
    sel = mask > 0.5
    return float(np.sqrt(np.mean(mid[sel] ** 2))), float(np.sqrt(np.mean(fine[sel] ** 2)))


@pytest.mark.parametrize("name", SMILING)
def test_neutral_softens_the_folds_and_keeps_the_texture(name: str, engine: MeshEngine, sources: dict) -> None:
    require_portrait(name)
    src = sources[name]
    c = src.crop
    assert c.folds is not None, "a smiling photo gets its folds softened"
    mask = F.fold_mask(c.image.shape[:2], c.points, c.frame)
    # The pixels the neutral render samples: the folds' shading more than halved over the mask,
    # the skin's texture (1 px scale) mostly kept.
    k = coefficients(activation(Motion.emotion("neutral", 1.0)), src.expression)
    softened = c.folds.source(c.rgba, k.unsmile)[..., :3]
    mid_s, fine_s = _bands(softened, mask, c.frame.d)
    mid_p, fine_p = _bands(c.image, mask, c.frame.d)
    assert mid_s < 0.6 * mid_p, (name, mid_s, mid_p)
    assert fine_s > 0.7 * fine_p, (name, fine_s, fine_p)
    # And the render: the warp moves the lips into part of the mask (the same in both), so the
    # drop is smaller there, but it is there.
    motion = Motion.emotion("neutral", 1.0)
    after = engine.render([(src, motion)])[0]
    before = _without_folds(engine, src, motion)
    mid_a, fine_a = _bands(after, mask, c.frame.d)
    mid_b, fine_b = _bands(before, mask, c.frame.d)
    assert mid_a < 0.9 * mid_b, (name, mid_a, mid_b)
    assert fine_a > 0.65 * fine_b, (name, fine_a, fine_b)
    # Nothing far from the mask's box changes (the warp carries its pixels a little way).
    x0, y0, x1, y1 = c.folds.box
    ys, xs = np.nonzero(np.any(after != before, axis=2))
    assert len(xs) > 0
    reach = 0.3 * c.frame.d
    assert xs.min() >= x0 - reach and xs.max() < x1 + reach and ys.min() >= y0 - reach and ys.max() < y1 + reach


@pytest.mark.parametrize("name", SMILING)
def test_happy_keeps_the_photos_folds(name: str, engine: MeshEngine, sources: dict) -> None:
    require_portrait(name)
    src = sources[name]
    motion = Motion.emotion("happy", 1.0)
    assert np.array_equal(engine.render([(src, motion)])[0], _without_folds(engine, src, motion))
    # The photo's own baseline never touches the folds either.
    photo = Motion(baseline="photo")
    assert np.array_equal(engine.render([(src, photo)])[0], _without_folds(engine, src, photo))


@pytest.mark.parametrize("name", NOT_SMILING)
def test_a_photo_that_does_not_smile_renders_as_before(name: str, engine: MeshEngine, sources: dict) -> None:
    require_portrait(name)
    src = sources[name]
    assert src.crop.folds is None
    assert src.full.folds is None
    for e in ("neutral", "sad", "surprised"):
        motion = Motion.emotion(e, 1.0)
        assert np.array_equal(engine.render([(src, motion)])[0], _without_folds(engine, src, motion))


def test_the_full_resolution_render_gets_the_same_treatment(engine: MeshEngine, sources: dict) -> None:
    require_portrait("smile_outdoor")
    src = sources["smile_outdoor"]
    full = src.full
    assert full.folds is not None
    motion = Motion.emotion("neutral", 1.0)
    after = engine.render([(src, motion)], mode="full")[0]
    keep = src._full
    src._full = dataclasses.replace(full, folds=None)
    try:
        before = engine.render([(src, motion)], mode="full")[0]
    finally:
        src._full = keep
    x0, y0 = src.full_box[:2]
    mask = F.fold_mask(full.image.shape[:2], full.points, full.frame)
    fx0, fy0, fx1, fy1 = full.folds.box
    box = (slice(y0 + fy0, y0 + fy1), slice(x0 + fx0, x0 + fx1))
    m = np.zeros(after.shape[:2], np.float32)
    m[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]] = mask
    mid_a, _ = _bands(after[box], m[box], full.frame.d)
    mid_b, _ = _bands(before[box], m[box], full.frame.d)
    assert mid_a < 0.75 * mid_b, (mid_a, mid_b)


def test_blend_weight_follows_the_undone_smile(sources: dict) -> None:
    require_portrait("smile_outdoor")
    expr = sources["smile_outdoor"].expression
    assert F.photo_smile(expr.aus) > F.MIN_SMILE

    def weight(motion: Motion, photo=expr) -> float:
        return coefficients(activation(motion), photo).unsmile

    assert weight(Motion.emotion("neutral", 1.0)) == 1.0
    for e in ("sad", "surprised", "angry"):
        assert weight(Motion.emotion(e, 1.0)) == 1.0, e
    # AU9 furrows the same skin: disgust keeps the photo's folds, and half of AU9 half of them;
    # fear's raised upper lip (AU10 without AU9) keeps none.
    assert weight(Motion.emotion("disgusted", 1.0)) == 0.0
    assert F.furrow_keeps({9: 0.5 * F.FURROW_FULL}) == pytest.approx(0.5)
    fear = activation(Motion.emotion("fearful", 1.0)).action_units
    assert fear.get(10, 0.0) > 1.0 and F.furrow_keeps(fear) == 0.0
    assert weight(Motion.emotion("fearful", 1.0)) == 1.0
    assert weight(Motion.emotion("happy", 1.0)) == 0.0
    # Part of a smile: part of the folds kept, more of them the more it smiles.
    ws = [weight(Motion.emotion("happy", k)) for k in (0.2, 0.4, 0.6)]
    assert 1.0 > ws[0] > ws[1] > ws[2] >= 0.0, ws
    smile = F.photo_smile(expr.aus)
    act = activation(Motion.emotion("happy", 0.4))
    assert ws[1] == pytest.approx(max(0.0, 1.0 - act.action_units.get(12, 0.0) * SMILE_GAIN / min(smile, SMILE_GAIN)))
    # The photo's own expression kept (baseline "photo"): nothing undone, nothing softened.
    assert weight(Motion.emotion("neutral", 1.0), None) == 0.0
    assert F.undone({"4v": 0.05}, 0.0, SMILE_GAIN) == 0.0


def test_blends_are_cached_per_step_and_steps_are_small(sources: dict) -> None:
    require_portrait("smile_teeth")
    c = sources["smile_teeth"].crop
    folds = c.folds
    assert folds.source(c.rgba, 0.0) is c.rgba
    a = folds.source(c.rgba, 0.5)
    assert folds.source(c.rgba, 0.5 + 0.2 / F.STEPS) is a  # same quantised step: no new blend
    b = folds.source(c.rgba, 0.5 + 1.0 / F.STEPS)
    assert b is not a
    # One step changes a pixel by 1/STEPS of its correction (plus rounding): no visible pop.
    step = np.abs(b.astype(np.int16) - a.astype(np.int16)).max()
    assert step <= np.ceil(np.abs(folds.delta).max() / F.STEPS) + 1
    assert np.array_equal(b[..., 3], c.rgba[..., 3])
    # Outside the mask's box the source is the canvas's pixels.
    x0, y0, x1, y1 = folds.box
    outside = np.ones(c.image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(b[outside], c.rgba[outside])
    # The canvas's own arrays are never written, and the cache stays bounded.
    assert not np.shares_memory(b, c.rgba)
    for k in range(F.STEPS + 1):
        folds.source(c.rgba, k / F.STEPS)
    assert len(folds._cache) == F.CACHE
    assert np.array_equal(c.rgba[..., :3], c.image)


@pytest.mark.parametrize("name", SMILING)
def test_the_mask_leaves_lips_nostrils_eyes_and_jaw_alone(name: str, sources: dict) -> None:
    require_portrait(name)
    c = sources[name].crop
    mask = F.fold_mask(c.image.shape[:2], c.points, c.frame)
    assert mask.max() > 0.9
    # Lips (outer and inner), eyes, nostrils' base, the jaw outline and chin.
    for i in (0, 17, 13, 14, 37, 267, 84, 314, 159, 145, 386, 374, 2, 79, 309, 152, 172, 397, 58, 288):
        x, y = c.points[i, :2]
        assert mask[int(round(y)), int(round(x))] < 0.05, (name, i)
    # The mouth corners and the nostrils' outer base: where the fold begins and ends, next to
    # the lines that stay.
    for i in (61, 291, 98, 327):
        x, y = c.points[i, :2]
        assert mask[int(round(y)), int(round(x))] < 0.1, (name, i)

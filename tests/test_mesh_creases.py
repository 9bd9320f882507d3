"""Expression creases (engine/mesh/creases.py): shaded in where and when their action units are active.

On real portraits (avatar_testkit.portraits): each layer lies where its crease belongs (the glabella's
furrows between the inner brows, the nose's wrinkles and nasolabial lines around the nose, the forehead's
lines above the brows, central for AU1, outer for AU2) and never on the hair, the brows or the eyes;
neutral and happy renders are byte for byte the renders without creases; the frames that ask for the
action units darken the skin there; a steady expression reuses its cached source, the cache is
bounded, the shading is relative to the skin's own value, and it composes with the softened folds.
"""
from __future__ import annotations

import dataclasses

import cv2
import numpy as np
import pytest

from avatar_testkit.portraits import available_portraits, portrait_rgb, require_portrait
from engine.facs import activation
from engine.mesh import MeshEngine, canvas
from engine.mesh import creases as C
from engine.mesh import folds as F
from engine.mesh import hairline
from engine.mesh import regions as R
from engine.mesh.canvas import _source, coefficients
from engine.motion import Motion

NAMES = ("astronaut", "smile_teeth", "glasses")


def _act(emotion: str, intensity: float):
    return activation(Motion.emotion(emotion, intensity))



@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module")
def sources(engine: MeshEngine) -> dict:
    return {n: engine.prepare(portrait_rgb(n)) for n in NAMES if n in available_portraits()}


def _layer(c, name: str) -> np.ndarray:
    """The layer's relative change over the whole canvas (0 outside its box)."""
    out = np.zeros(c.image.shape[:2], np.float32)
    x0, y0, x1, y1 = c.creases.box
    out[y0:y1, x0:x1] = c.creases.layers[C.LAYERS.index(name)]
    return out


def _frame_coords(c) -> tuple[np.ndarray, np.ndarray]:
    h, w = c.image.shape[:2]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    uv = c.frame.coords(np.stack([xx, yy], axis=-1))
    return uv[..., 0], uv[..., 1]


def _poly(c, idx) -> np.ndarray:
    m = np.zeros(c.image.shape[:2], np.uint8)
    cv2.fillPoly(m, [np.round(c.points[list(idx), :2]).astype(np.int32)], 1)
    return m > 0


@pytest.mark.parametrize("name", NAMES)
def test_each_layer_lies_where_its_crease_belongs(name: str, sources: dict) -> None:
    require_portrait(name)
    c = sources[name].crop
    assert c.creases is not None
    u, v = _frame_coords(c)
    brow_top = np.array([c.frame.coords(c.points[list(s), :2].astype(np.float64))[:, 1].min() for s in C.BROW_TOP])
    for key in C.LAYERS:
        lay = _layer(c, key)
        dark = lay < -0.02
        assert dark.sum() > 20 or key in ("1", "2"), f"{name}: layer {key} is empty"
        if not dark.any():
            continue   # forehead lines under a fringe: nothing to check
        du, dv = u[dark], v[dark]
        # The shading is a darkening with a faint highlight, never more than its depth.
        assert lay.min() >= -max(C.DEPTH[key], C.NASOLABIAL_DEPTH) - 1e-6
        assert lay.max() <= C.HIGHLIGHT * max(C.DEPTH[key], C.NASOLABIAL_DEPTH) + 1e-6
        if key == "4":   # between the inner brows, above the eyes
            assert np.abs(du).max() < 0.3 and dv.max() < 0.0 and dv.min() > -0.7, (du, dv)
        elif key == "9":   # around the nose, from its root to beside the mouth
            assert np.abs(du).max() < 0.75 and dv.min() > -0.2, (du.max(), dv.min())
        else:   # above the brows: "1" central, "2" its outer parts
            assert dv.max() < brow_top.max(), f"{name}: forehead line {key} below the brows"
            if key == "1":
                assert np.abs(du).max() < 0.5
            else:
                assert np.abs(du).min() > 0.2
    # Never on the brows, the eyes or the hair.
    every = np.abs(sum(_layer(c, k) for k in C.LAYERS))
    for s in (0, 1):
        brow = _poly(c, (*C.BROW_TOP[s], *C.BROW_LOW[s][::-1]))
        assert every[brow].max() < 0.01, f"{name}: crease on a brow"
    hair = hairline.hair_mask(c.image, c.points, c.frame)
    if hair.any():
        assert every[hair].max() < 0.01, f"{name}: crease on the hair"


@pytest.mark.parametrize("name", ("surprised", "astronaut", "smile_teeth"))
def test_the_nasolabial_fold_is_a_sloped_fold_not_a_stroke(name: str, engine: MeshEngine, sources: dict) -> None:
    """A fold, not a pen stroke: its shade is a slope on the lip's side of the valley (crisp on the
    cheek's), it flares out from the nose wing (even beside the `surprised` portrait's narrow O, whose
    corners lie straight below the wings) and it has faded by the mouth corner."""
    require_portrait(name)
    c = (sources[name] if name in sources else engine.prepare(portrait_rgb(name))).crop
    lay = _layer(c, "9")
    u, v = _frame_coords(c)
    for side, (wing, corner) in enumerate(zip(R.NOSE_WING, R.MOUTH_CORNERS)):
        s = -1 if side == 0 else 1
        a, k = (c.frame.coords(c.points[i, :2].astype(np.float64)) for i in (wing, corner))
        floors, slopes = [], []
        for dv in (0.1, 0.2, 0.35):
            row = (np.abs(v - (a[1] + dv)) < 0.01) & (s * u > s * a[0] - 0.05)
            i = int(np.argmin(np.where(row, lay, 0.0)))
            floors.append((float(lay.flat[i]), s * float(u.flat[i])))
            if dv < 0.3:
                lip = row & (np.abs(s * (u - u.flat[i]) + 0.06) < 0.01)
                cheek = row & (np.abs(s * (u - u.flat[i]) - 0.06) < 0.01)
                slopes.append((float(lay[lip].mean()), float(lay[cheek].mean()), floors[-1][0]))
        # 0.06 d from the floor, the lip's side keeps a good share of the shade, the cheek's little.
        assert np.mean([lp / fl for lp, _, fl in slopes]) > 0.35, (name, s, slopes)
        assert all(lp < 2 * ch for lp, ch, _ in slopes), (name, s, slopes)
        # Flared: lower down, the valley lies well out beyond the wing.
        assert floors[2][1] - s * a[0] > 0.1, (name, s, floors, a)
        # Faded by the corner: little shade left below it.
        below = (v > k[1] + 0.06) & (s * u > 0.1)
        assert lay[below].min() > 0.1 * min(f for f, _ in floors), (name, s)


@pytest.mark.parametrize("emotion", ["neutral", "happy"])
def test_no_creases_without_their_action_units(emotion: str, engine: MeshEngine, sources: dict) -> None:
    for name in NAMES:
        require_portrait(name)
        src = sources[name]
        motion = Motion.emotion(emotion, 1.0)
        k = coefficients(_act(emotion, 1.0), src.expression)
        assert k.creases == (0.0, 0.0, 0.0, 0.0)
        keep = src.crop
        with_c = engine.render([(src, motion)])[0]
        src.crop = dataclasses.replace(keep, creases=None)
        try:
            without = engine.render([(src, motion)])[0]
        finally:
            src.crop = keep
        assert np.array_equal(with_c, without), f"{name}: {emotion} changed by the creases"


def test_weights_follow_the_action_units() -> None:
    # The constants creases.py shares with the canvas (it cannot import canvas, which imports it).
    assert C.TAIL_HOLD == canvas.TAIL_HOLD and C.NOSE_FROWN == canvas.NOSE_FROWN
    w = dict(zip(C.LAYERS, C.weights(_act("disgusted", 1.0).action_units)))
    assert w["9"] == 1.0 and 0 < w["4"] < 1.0 and w["1"] == w["2"] == 0.0
    w = dict(zip(C.LAYERS, C.weights(_act("surprised", 1.0).action_units)))
    assert w["1"] > 0.5 and w["2"] > 0.5 and w["9"] == w["4"] == 0.0
    # Fear's and sadness's forehead lines stay central (their outer brows are held down or still).
    for emotion in ("fearful", "sad"):
        w = dict(zip(C.LAYERS, C.weights(_act(emotion, 1.0).action_units)))
        assert w["1"] > 0.5 and w["4"] > 0.3 and w["2"] < 0.1, (emotion, w)
    w = dict(zip(C.LAYERS, C.weights(_act("angry", 1.0).action_units)))
    assert w["4"] > 0.5 and w["1"] == w["2"] == w["9"] == 0.0
    # Half the intensity, about half the weight.
    half = C.weights(_act("disgusted", 0.5).action_units)
    assert 0.3 < half[0] < 0.7


@pytest.mark.parametrize("emotion,key", [("disgusted", "9"), ("sad", "4"), ("surprised", "2")])
def test_a_frame_darkens_the_skin_along_its_creases(emotion: str, key: str, sources: dict) -> None:
    name = "smile_teeth"
    require_portrait(name)
    src = sources[name]
    c = src.crop
    k = coefficients(_act(emotion, 1.0), src.expression)
    out = _source(c, k)[..., :3].astype(np.float32)
    base = (c.folds.source(c.rgba, k.unsmile) if c.folds is not None else c.rgba)[..., :3].astype(np.float32)
    lay = _layer(c, key)
    valley = lay < 0.5 * lay.min() if lay.min() < 0 else None
    assert valley is not None and valley.sum() > 10
    valley &= base.sum(-1) > 150   # not so dark that uint8 rounding dominates
    # Every active layer adds (disgust's frown furrows the glabella too), at its quantised weight.
    total = sum(round(w * F.STEPS) / F.STEPS * _layer(c, name) for name, w in zip(C.LAYERS, k.creases))
    ratio = out[valley].sum(-1) / base[valley].sum(-1)
    expected = 1.0 + total[valley]
    # Relative darkening as the layer says, to the uint8 rounding.
    assert np.abs(ratio - expected).max() < 0.03
    assert ratio.mean() < 0.95


def test_a_steady_expression_reuses_its_source_and_the_cache_is_bounded(sources: dict) -> None:
    name = "astronaut"
    require_portrait(name)
    c = sources[name].crop
    cr = dataclasses.replace(c.creases, _cache=type(c.creases._cache)())
    a = cr.source(c.rgba, 0, (0.5, 0.0, 0.0, 0.0))
    assert cr.source(c.rgba, 0, (0.5 + 0.2 / F.STEPS, 0.0, 0.0, 0.0)) is a   # same step: no new blend
    assert cr.source(c.rgba, 0, (0.0, 0.0, 0.0, 0.0)) is c.rgba
    b = cr.source(c.rgba, 0, (0.5, 0.25, 0.0, 0.0))
    assert b is not a
    for i in range(3 * C.CACHE):
        cr.source(c.rgba, 0, ((i + 1) / (3 * C.CACHE), 0.0, 0.0, 0.0))
        assert len(cr._cache) <= C.CACHE
    # A full-resolution canvas keeps fewer copies: the cache's bytes are bounded too.
    big = np.zeros((2048, 2048, 4), np.uint8)
    assert C.CACHE_BYTES // big.nbytes < 2 and cr.nbytes(big) <= 2 * big.nbytes + sum(x.nbytes for x in cr.layers)
    # The canvas's own cache, after rendering the same frame twice: one entry, the same array.
    k = coefficients(_act("disgusted", 1.0), sources[name].expression)
    assert _source(c, k) is _source(c, k)


def test_the_shading_is_relative_to_the_skin() -> None:
    layer = np.full((8, 8), -0.2, np.float32)
    for grey in (200, 60):
        # (A canvas's composed sources are cached by weight levels: one Creases per canvas.)
        cr = C.Creases(box=(2, 2, 10, 10), layers=(layer, *(np.zeros_like(layer),) * 3))
        rgba = np.full((12, 12, 4), grey, np.uint8)
        out = cr.source(rgba, 0, (1.0, 0.0, 0.0, 0.0))
        assert out[5, 5, 0] == round(grey * 0.8)
        assert out[0, 0, 0] == grey and out[5, 5, 3] == grey   # outside the box, and alpha, untouched


def test_creases_compose_with_the_softened_folds(sources: dict) -> None:
    name = "astronaut"   # a smiling photo: sadness undoes the smile and creases the brows
    require_portrait(name)
    src = sources[name]
    c = src.crop
    assert c.folds is not None
    k = coefficients(_act("sad", 1.0), src.expression)
    assert k.unsmile > 0 and k.creases[C.LAYERS.index("4")] > 0
    folded = c.folds.source(c.rgba, k.unsmile)
    both = _source(c, k)
    assert both is not folded
    x0, y0, x1, y1 = c.creases.box
    outside = np.ones(c.image.shape[:2], bool)
    outside[y0:y1, x0:x1] = False
    assert np.array_equal(both[outside], folded[outside])
    assert not np.array_equal(both[y0:y1, x0:x1], folded[y0:y1, x0:x1])
    fx0, fy0, fx1, fy1 = c.folds.box
    assert not np.array_equal(folded[fy0:fy1, fx0:fx1], c.rgba[fy0:fy1, fx0:fx1])

"""Eyes behind glasses: a widened lid rises as far as asked, and no further (eyes.py, kernels.lid_stretch).

Grace Hopper's top rims sit on her upper lids and rise with her brows as one piece (rigid.py)
while her lids stay, so the smooth map stretches the band between them: a lid shift made in
source pixels showed about twice as tall, and her widened lids' lashes filled the lens up to
the rim (a dark peak over each iris).
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.mesh import MeshEngine
from engine.mesh.canvas import backward_maps, coefficients
from engine.mesh.engine import activation
from engine.motion import Motion
from engine.mesh import kernels as K
from engine.mesh.eyes import RIMS_WIDEN
from engine.mesh.rigid import RIM_LIFT_MIN, rim_lift


def _grace() -> np.ndarray:
    from matplotlib.cbook import get_sample_data
    from PIL import Image

    with get_sample_data("grace_hopper.jpg") as f:
        return np.array(Image.open(f).convert("RGB"))


@pytest.fixture(scope="module")
def grace():
    return MeshEngine().prepare(_grace())


def _rows(maps, box, eye, xs, above: float = 0.0) -> np.ndarray:
    """Per output column in ``xs``: the output row (sub-pixel) where the backward map crosses
    the photo's upper lash line (or ``above`` that many of its lash heights above it)."""
    X0, Y0 = box[0], box[1]
    rows = []
    for x in xs:
        col = maps[:, x - X0].astype(np.float64) - eye.centre
        s, t = col @ eye.u, col @ eye.v
        tu = np.interp(s, eye.s_up, eye.t_up)
        h = np.interp(s, eye.s_low, eye.t_low) - tu
        line = tu - above * np.minimum(K.LASH * h, 0.35 * eye.skin)
        y0 = int(eye.centre[1] - 3 * eye.opening) - Y0
        below = np.nonzero(t[y0:] >= line[y0:])[0]
        k = y0 + int(below[0])
        a, b = t[k - 1] - line[k - 1], t[k] - line[k]
        rows.append(Y0 + k - 1 + (-a) / (b - a))
    return np.array(rows)


@pytest.mark.parametrize("emotion", ["surprised", "fearful"])
def test_widened_lid_rises_as_asked_behind_glasses(grace, emotion):
    c = grace.crop
    assert all(e.rims for e in c.eyes)
    k = coefficients(activation(Motion.emotion(emotion, 1.0, baseline="neutral")), grace.expression)
    still = dataclasses.replace(k, lids=(0.0, 0.0))  # the same frame with the upper lids as photographed
    m, m0 = backward_maps(c, k), backward_maps(c, still)
    assert m.box == m0.box
    for eye, travel in zip(c.eyes, k.lids):
        assert travel < -0.2  # wide eyes
        # The middle half of the eye (between the corners), where the lid rises most.
        xs = np.arange(int(eye.centre[0] - eye.width / 4), int(eye.centre[0] + eye.width / 4) + 1)
        lid = _rows(m.maps, m.box, eye, xs)
        rise = _rows(m0.maps, m0.box, eye, xs) - lid
        s = (np.stack([xs, np.full(len(xs), eye.centre[1])], 1) - eye.centre) @ eye.u
        h = np.interp(s, eye.s_low, eye.t_low) - np.interp(s, eye.s_up, eye.t_up)
        ratio = rise / (-travel * RIMS_WIDEN * h)
        # The lid rises as far as asked (glasses wearers' RIMS_WIDEN included) all along: in
        # source pixels it rose 1.1x as far near the corners' side and 1.7x over the iris (a
        # peak of lashes up to the rim: max over min 1.47 surprised, 1.34 fearful).
        assert 0.88 < np.median(ratio) < 1.12, (emotion, np.round(ratio, 2))
        assert ratio.max() / ratio.min() < 1.15, (emotion, np.round(ratio, 2))


def test_lid_stretch_reads_the_squeeze():
    """A column whose map squeezes the source 2:1 above the lid gets half the travel and half
    the lash line; an unstretched one all of them."""
    h, w = 40, 3
    ys = np.arange(h, dtype=np.float32)
    q = np.zeros((h, w, 2), np.float32)
    q[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    q[:, 0, 1] = ys  # identity
    q[:, 1, 1] = np.where(ys < 30, 15 + ys / 2, ys)  # output rows 0..30 show source 15..30
    q[:, 2, 1] = ys
    s_up = np.array([-10.0, 10.0])
    t_up = np.array([0.0, 0.0])  # the lash line at source row 30 (centre (1, 30))
    t_low = np.array([10.0, 10.0])  # opening 10 px
    out = np.empty((w, 2), np.float32)
    K.lid_stretch(q, 1.0, 30.0, 1.0, 0.0, 0.0, 1.0, s_up, t_up, s_up, t_low, -0.35, 10.0, out)
    np.testing.assert_allclose(out, [[1.0, 1.0], [0.5, 0.5], [1.0, 1.0]], atol=1e-6)



def _lens_top_stretch(c, maps, box, eye) -> float:
    """The largest vertical magnification (1 / d(source y)/d(output y)) over the lens's top
    below Grace's rims (the photo from the upper lid to 0.12 d above it; the middle of the eye
    +-0.25 d)."""
    X0, Y0 = box[0], box[1]
    d = c.frame.d
    worst = 1.0
    for x in range(int(eye.centre[0] - 0.25 * d), int(eye.centre[0] + 0.25 * d) + 1):
        rows = slice(int(eye.centre[1] - 0.6 * d) - Y0, int(eye.centre[1]) - Y0)
        src = maps[rows, x - X0].astype(np.float64)
        rel = src - eye.centre
        lid = np.interp(rel @ eye.u, eye.s_up, eye.t_up)
        t = rel @ eye.v
        step = np.diff(src[:, 1])
        inside = ((t > lid - 0.12 * d) & (t < lid))[:-1]
        if inside.any():
            worst = max(worst, float(1.0 / step[inside].min()))
    return worst


@pytest.mark.parametrize("motion", ["brows", "surprised", "fearful"])
def test_lens_top_is_not_stretched_when_brows_rise(grace, motion):
    """Grace's top rims rest on her upper lids and hide her low brows: lifted with the brows
    they stretched the thin lens top between rim and lid, white glints and all (max over both
    eyes, smooth fields: brows=1 2.74x, surprise 3.06x, fear 1.95x). Where the brows sit low
    the rims rise by rigid.RIM_LIFT_MIN of the brows' lift: 1.60x, 1.72x, 1.19x."""
    c = grace.crop
    assert rim_lift(c.points, c.frame) == pytest.approx(RIM_LIFT_MIN)
    m = Motion(baseline="photo").with_controls(brows=1.0) if motion == "brows" else Motion.emotion(motion, 1.0)
    k = coefficients(activation(m), grace.expression)
    k = dataclasses.replace(k, lids=(0.0, 0.0), low=(0.0, 0.0))  # the smooth fields (the lids map on their own)
    maps = backward_maps(c, k)
    for eye in c.eyes:
        stretch = _lens_top_stretch(c, maps.maps, maps.box, eye)
        assert stretch < 1.8, (motion, round(stretch, 2))

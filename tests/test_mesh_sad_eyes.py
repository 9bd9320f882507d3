"""The oblique sad eye (eyes.SAD_SLANT, kernels.eye): in sadness (AU1 with AU4) the upper lid
rises at the inner part of the eye and droops at the outer part, so the opening is taller at
the nose side than at the temple side; no other emotion's lids change.

Checked on the warp (the backward map around each eye, as tests/test_mesh_glasses.py does):
the lid moves by 1-2 output pixels at a quarter of the eye's width from its middle, finer than
FaceMesh's re-detected contour can be trusted with behind glasses.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.mesh import eyes as E
from engine.mesh.canvas import backward_maps, coefficients
from engine.mesh.engine import activation
from engine.motion import EMOTIONS, Motion
from mesh_checks import prepared

NAMES = ("grace_hopper", "astronaut")


@pytest.fixture(scope="module")
def sources(mesh_engine):
    return prepared(mesh_engine, NAMES)


def _crossing(maps, box, eye, x: int, upper: bool) -> float:
    """Output row (sub-pixel) in column ``x`` where the backward map crosses the photo's upper
    (or lower) lash line of ``eye``: searched downwards from above the eye."""
    X0, Y0 = box[0], box[1]
    col = maps[:, x - X0].astype(np.float64) - eye.centre
    s, t = col @ eye.u, col @ eye.v
    line = np.interp(s, eye.s_up, eye.t_up) if upper else np.interp(s, eye.s_low, eye.t_low)
    y0 = int(eye.centre[1] - 2 * eye.opening) - Y0
    k = y0 + int(np.nonzero(t[y0:] >= line[y0:])[0][0])
    a, b = t[k - 1] - line[k - 1], t[k] - line[k]
    return Y0 + k - 1 + (-a) / (b - a)


def _openings(src, k) -> list[tuple[float, float, float, float]]:
    """Per eye: (inner, outer) opening in output pixels, and the upper lid's row on each side,
    at a quarter of the eye's width from its middle."""
    c = src.crop
    m = backward_maps(c, k)
    out = []
    for eye in c.eyes:
        side = np.sign(eye.inner)
        row = []
        for sign in (side, -side):  # the inner side, then the outer one
            x = int(round(eye.centre[0] + sign * 0.25 * eye.width))
            up = _crossing(m.maps, m.box, eye, x, True)
            row += [_crossing(m.maps, m.box, eye, x, False) - up, up]
        out.append((row[0], row[2], row[1], row[3]))
    return out


@pytest.mark.parametrize("name", NAMES)
def test_sad_opening_is_taller_at_the_nose_side(sources, name):
    src = sources[name]
    k = coefficients(activation(Motion.emotion("sad", 1.0, baseline="neutral")), src.expression)
    assert k.slant == pytest.approx(E.SAD_SLANT)
    flat = dataclasses.replace(k, slant=0.0)  # the same frame with the lids closed evenly
    for (inner, outer, up_in, up_out), (inner0, outer0, up_in0, up_out0) in zip(_openings(src, k),
                                                                                _openings(src, flat)):
        # The inner part of the lid rises, the outer part comes down (output rows grow down).
        assert up_in < up_in0 - 0.6 and up_out > up_out0 + 0.6, (name, up_in, up_in0, up_out, up_out0)
        # The opening tilts: taller at the nose side than at the temple side, and by more than
        # the evenly closed lids left it (measured: 1.5x on both portraits).
        assert inner > outer, (name, inner, outer)
        assert inner / max(outer, 0.5) > 1.25 * inner0 / max(outer0, 0.5), (name, inner, outer, inner0, outer0)


def test_only_sadness_slants_the_lids(sources):
    for src in sources.values():
        for emotion in EMOTIONS:
            for photo in (src.expression, None):
                k = coefficients(activation(Motion.emotion(emotion, 1.0, baseline="neutral")), photo)
                assert (k.slant > 0) == (emotion == "sad"), (emotion, k.slant)
        k = coefficients(activation(Motion.emotion("sad", 0.0, baseline="neutral")), src.expression)
        assert k.slant == 0.0


def test_slant_changes_the_sad_frame_only(mesh_engine, sources, monkeypatch):
    src = sources["astronaut"]
    motions = [Motion.emotion(e, 1.0, baseline="neutral") for e in ("neutral", "happy", "sad")]
    with_slant = mesh_engine.render([(src, m) for m in motions], mode="crop")
    monkeypatch.setattr(E, "SAD_SLANT", 0.0)
    without = mesh_engine.render([(src, m) for m in motions], mode="crop")
    assert np.array_equal(with_slant[0], without[0]) and np.array_equal(with_slant[1], without[1])
    # The sad frame differs around the eyes (so the comparison above could fail).
    assert np.abs(with_slant[2].astype(int) - without[2]).max() > 20

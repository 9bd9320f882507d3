"""Closed-away open mouths stay closed at the corners (engine/mesh/canvas.py: _at_closed,
CORNERS_AT_CLOSED).

A photo with an open mouth (the `surprised` portrait's round O, the smiling photos' teeth) has
its mouth closed for every emotion that does not open it (mouth.close_bases). The expression's
fields act at the photo's lip edges, which in that photo are apart, so under AU15 (sadness's
corners down) the lower lip fell away from the upper one at the corners, and the gap was painted
as mouth interior: two dark crescents up to 6 px wide (the `surprised` portrait's sad render, 197
painted pixels; glasses' sad 77). Now the expression acts on the closed lips. Checked on the
painted opening of the backward maps (what kernels.paint draws dark).
"""
from __future__ import annotations


import numpy as np
import pytest

from engine.facs import activation
from engine.mesh import canvas as K
from engine.mesh.canvas import backward_maps, coefficients
from engine.motion import EMOTIONS, Motion
from mesh_checks import prepared_once

OPEN_PHOTOS = ["astronaut", "smile_teeth", "surprised", "smile_outdoor", "glasses"]



def _painted(src, motion: Motion) -> np.ndarray:
    """The painted opening's alpha (what kernels.paint darkens), or an empty array."""
    k = coefficients(activation(motion), src.expression)
    m = backward_maps(src.crop, k)
    if m is None or m.opening is None:
        return np.zeros((0, 0), np.float32)
    return m.opening[1].alpha


# Every shut-mouthed render of an open photo: neutral and sadness, and the `surprised`
# portrait's anger (lips pressed, canvas._round_mouth); the other emotions open the mouth.
SHUT = [(n, e, i) for n in OPEN_PHOTOS for e in ("neutral", "sad") for i in (0.5, 1.0)] + [("surprised", "angry", 1.0)]


@pytest.mark.parametrize("name,emotion,intensity", SHUT)
def test_closed_lips_meet_at_the_corners(mesh_engine, prepared_portraits, name, emotion, intensity):
    """Where the emotion keeps the mouth shut, nothing between the lips is painted dark beyond
    the antialiased seam (the crescents were 4-6 px over 14-39 columns): the slivers left where
    the two sides' fields differ are filled from the lips (mouth.SHUT_FILL_W), so no pixel is
    painted more than half dark (the `surprised` portrait's sad right corner had a 3x4 px black
    spot, 17-21 such pixels; glasses' neutral 9)."""
    src = prepared_once(mesh_engine, prepared_portraits, name)
    assert src.expression.mouth_open
    motion = Motion.emotion(emotion, intensity)
    k = coefficients(activation(motion), src.expression)
    assert float(k.tear.sum()) == 0 and k.close > 0
    dark = _painted(src, motion) > 0.5
    if dark.size == 0:
        return
    assert dark.sum() == 0, f"{dark.sum()} painted px between the closed lips"


@pytest.mark.parametrize("name", OPEN_PHOTOS)
def test_only_a_shut_sad_mouth_is_composed(mesh_engine, prepared_portraits, name):
    """The composition is keyed on AU15 with the mouth shut: every emotion that opens the mouth
    (and neutral) renders as before; sadness composes mostly from half intensity (the
    `surprised` photo's own AU15 is subtracted first)."""
    src = prepared_once(mesh_engine, prepared_portraits, name)
    for e in EMOTIONS:
        w = K._closed_weight(coefficients(activation(Motion.emotion(e, 1.0)), src.expression))
        assert w == (1.0 if e == "sad" else 0.0), (e, w)
    w_half = K._closed_weight(coefficients(activation(Motion.emotion("sad", 0.5)), src.expression))
    assert w_half >= 0.75


def test_the_composition_fades_in_without_a_jump(mesh_engine, prepared_portraits):
    """A stream blending into sadness (or from it into an opening emotion) moves the weight in
    small steps, never from 0 to 1 at once."""
    src = prepared_once(mesh_engine, prepared_portraits, "surprised")
    for a, b in (("neutral", "sad"), ("sad", "surprised"), ("sad", "fearful")):
        last = None
        for x in np.linspace(0.0, 1.0, 51):
            k = coefficients(activation(Motion(emotions={a: 1.0 - x, b: x})), src.expression)
            w = K._closed_weight(k)
            assert 0.0 <= w <= 1.0
            if last is not None:
                assert abs(w - last) <= 0.25, (a, b, x, last, w)
            last = w

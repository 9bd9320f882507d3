"""No black spike at the painted opening's ends (engine/mesh/mouth.py: corner_lift, corner_edge;
kernels.choose_sides).

A toothy smile's mouth is black right at its corners: the gap between the lips runs on past
FaceMesh's inner lip corners, above their line (smile_teeth: luma 27-60 up to 7 px over it,
against a face median of 146). The upper side owns the source above that line, so when the photo's
interior was closed away under a painted opening that darkness came along with the upper lip and
ran on from the opening's ends: a hard-edged, stair-stepped black spike or wedge at each corner of
smile_teeth's angry, surprised, fearful and disgusted renders (4, 11, 11 and 20 black pixels past
the inner corners). Now the upper lip's edge is raised over it and the lip above is drawn there.
"""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from engine.facs import activation
from engine.mesh import canvas as C
from engine.motion import Motion
from mesh_checks import prepared_once

LUMA = np.array([0.299, 0.587, 0.114])
OPENED = ["angry", "surprised", "fearful", "disgusted"]


def _unlifted(c: C.Canvas) -> C.Canvas:
    """The canvas as it was before: the photo's dark corners not raised over."""
    return dataclasses.replace(c, mouth=dataclasses.replace(c.mouth, lift=(0.0, 0.0)))


def _black_past_corners(c: C.Canvas, k: C.Coefficients) -> int:
    """Pixels of the mouth band that are not painted, whose upper-side source lies between the
    inner lip corners and just past the outer ones, and that are black (under 0.4 of the mouth
    region's median luma): the spikes that ran on from the painted opening's ends."""
    maps = C.backward_maps(c, k)
    assert maps is not None and maps.opening is not None
    (x0, y0, x1, y1), op, *_ = maps.opening
    X0, Y0 = maps.box[:2]
    frame = C.render_canvas(c, k)
    luma = frame[Y0 + y0:Y0 + y1, X0 + x0:X0 + x1].astype(np.float64) @ LUMA
    bx0, by0, bx1, by1 = c.mouth.box
    ref = float(np.median(c.image[by0:by1, bx0:bx1].astype(np.float64) @ LUMA))
    s = np.abs(op.s)
    beyond = (s >= c.mouth.s_corner) & (s <= 1.05) & (op.alpha == 0)
    return int((beyond & (luma < 0.4 * ref)).sum())


def test_smile_teeth_corners_are_found_black(mesh_engine, prepared_portraits):
    """The measure itself: smile_teeth's corners are black and raised over by several px; the
    portraits whose corners are only shaded are left as they are."""
    lift = prepared_once(mesh_engine, prepared_portraits, "smile_teeth").crop.mouth.lift
    assert min(lift) >= 3.0, lift
    for name in ("astronaut", "surprised", "smile_outdoor", "glasses"):
        assert prepared_once(mesh_engine, prepared_portraits, name).crop.mouth.lift == (0.0, 0.0), name


@pytest.mark.parametrize("emotion", OPENED)
def test_no_black_spike_past_the_opening(mesh_engine, prepared_portraits, emotion):
    src = prepared_once(mesh_engine, prepared_portraits, "smile_teeth")
    k = C.coefficients(activation(Motion.emotion(emotion, 1.0)), src.expression)
    assert not k.own_interior  # the photo's interior is closed away, the opening painted
    before = _black_past_corners(_unlifted(src.crop), k)
    after = _black_past_corners(src.crop, k)
    assert before >= 3, f"the check no longer sees the spike it was written for ({before} px)"
    assert after == 0, f"{after} black px run on past the inner lip corners (were {before})"


@pytest.mark.parametrize("emotion", ["neutral", "sad", "happy"])
def test_shut_mouths_keep_their_corners(mesh_engine, prepared_portraits, emotion):
    """Only an opening raises the edge: a shut (or the photo's own) mouth renders byte for byte
    as before."""
    src = prepared_once(mesh_engine, prepared_portraits, "smile_teeth")
    motion = Motion() if emotion == "neutral" else Motion.emotion(emotion, 1.0)
    k = C.coefficients(activation(motion), src.expression)
    assert np.array_equal(C.render_canvas(src.crop, k), C.render_canvas(_unlifted(src.crop), k))


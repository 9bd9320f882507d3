"""Disgust on glasses whose rims sit clear of the lids (engine/mesh/canvas.py: _clear_disgust,
RIMS_CLEAR_DISGUST, RIMS_CLEAR_DIS_NARROW).

On the `glasses` portrait (PhotoExpression.rims_clear) disgust's open, down-turned mouth over a band
of upper teeth read as a wail (sad). There the mouth purses instead: the lips pushed forward and
pressed, the corners drawn in, the upper lip raiser and the chin raiser nearly off, the jaw dropped a
little, the cheeks and lids up a little. Only disgust (the one emotion with AU9) changes, only on that
photo, and in proportion to the square of AU9's share (half an intensity shows a quarter of it).
Checked on the warp's coefficients and on the backward map (no fold-overs).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine.facs import activation  # noqa: E402
from engine.mesh import MeshEngine  # noqa: E402
from engine.mesh import canvas as K  # noqa: E402
from engine.mesh.canvas import coefficients  # noqa: E402
from engine.motion import EMOTIONS, Motion  # noqa: E402
from mesh_checks import folds_off_the_seam, prepared, same_frame  # noqa: E402


@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module")
def sources(engine):
    return prepared(engine, ("grace_hopper", "glasses"))


def _plain(act, expr):
    """The frame's coefficients with the clear rims' disgust rendering switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(K, "RIMS_CLEAR_DISGUST", {})
        mp.setattr(K, "RIMS_CLEAR_DIS_NARROW", 0.0)
        return coefficients(act, expr)


def test_only_the_glasses_portrait_has_rims_clear_of_the_lids(sources):
    assert sources["glasses"].expression.rims_clear
    assert not sources["grace_hopper"].expression.rims_clear


def test_clear_disgust_purses_the_mouth(sources):
    """On the glasses portrait: the lips pushed forward and pressed, the corners drawn in, the upper
    lip and the chin raisers nearly off, the cheeks up, the nose wrinkled (and its sneer) a little more."""
    expr = sources["glasses"].expression
    act = activation(Motion.emotion("disgusted", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    i = {a: K.SMOOTH_AUS.index(a) for a in ("9", "10s", "6", "17", "18", "24", "20")}
    assert k.smooth[i["18"]] > plain.smooth[i["18"]] + 0.7             # the lips pushed forward
    assert k.smooth[i["24"]] > plain.smooth[i["24"]] + 0.7             # and pressed
    assert k.smooth[i["20"]] < plain.smooth[i["20"]] - 1.0             # the corners drawn in
    assert k.tear[0] < plain.tear[0]                                   # the upper lip less raised
    assert k.smooth[i["17"]] < plain.smooth[i["17"]] - 0.5             # the chin raiser mostly off
    assert k.smooth[i["6"]] > plain.smooth[i["6"]] + 0.3               # the cheeks up
    assert plain.smooth[i["9"]] < k.smooth[i["9"]] < plain.smooth[i["9"]] + 0.3      # a little more
    assert plain.smooth[i["10s"]] < k.smooth[i["10s"]] < plain.smooth[i["10s"]] + 0.5  # its sneer


def test_clear_disgust_grows_with_the_square_of_intensity(sources):
    expr = sources["glasses"].expression
    i18 = K.SMOOTH_AUS.index("18")
    ups = []
    for t in (0.25, 0.5, 1.0):
        act = activation(Motion.emotion("disgusted", t))
        k, plain = coefficients(act, expr), _plain(act, expr)
        ups.append(float(k.smooth[i18] - plain.smooth[i18]))
    assert all(b > a > 0 for a, b in zip(ups, ups[1:])), ups
    assert ups[1] < 0.3 * ups[2], ups   # a quarter at half intensity, not a half


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "disgusted"])
def test_other_emotions_are_unchanged(sources, emotion):
    expr = sources["glasses"].expression
    act = activation(Motion.emotion(emotion, 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    assert same_frame(k, plain)


def test_grace_hoppers_disgust_is_her_own(sources):
    """Rims resting on the lids: this rendering never applies there."""
    expr = sources["grace_hopper"].expression
    act = activation(Motion.emotion("disgusted", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    assert same_frame(k, plain, paint=False, creases=False)


@pytest.mark.parametrize("intensity", [0.5, 0.8, 1.0])
def test_no_fold_overs(sources, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam."""
    bad, low = folds_off_the_seam(sources["glasses"], Motion.emotion("disgusted", intensity))
    assert bad == 0, f"{intensity}: {bad} folded pixels, min det {low:.3f}"

"""Sadness on glasses whose rims rest on the lids (engine/mesh/canvas.py: _rims_sad, RIMS_SAD,
RIMS_SAD_SQUINT).

grace_hopper's rims hide her brows, so sadness's oblique brows (AU1+4) barely show and her sad
render read neutral. On such a photo (PhotoExpression.rims_rest) the cheeks, lids and mouth carry
it: the cheeks raised (AU6; EMFACS's 6+15) under upper lids lowered further (heavy lids behind the
lenses), the lips parted a little with the lower lip drawn down (AU25, AU16), and AU12's field a
little, which deepens the nasolabial furrow (the engine has no AU11) while the corners stay down.
Only sadness changes (AU1 with AU4 and AU15, no AU2/AU5), and only on that photo; the `glasses`
portrait (rims clear of the lids) keeps its own rendering. Checked on the warp's coefficients and on
the backward map (no fold-overs).
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
    """The frame's coefficients with the rims' sadness rendering switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(K, "RIMS_SAD", {})
        mp.setattr(K, "RIMS_SAD_SQUINT", 0.0)
        return coefficients(act, expr)


def test_rims_sad_lifts_the_cheeks_and_parts_the_lips(sources):
    """On grace_hopper: the cheeks up, the upper lids lower, the lower lip further down, the
    corners still pulled down (AU15 untouched), the brows' AU1 and AU4 untouched."""
    expr = sources["grace_hopper"].expression
    act = activation(Motion.emotion("sad", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    i = {a: K.SMOOTH_AUS.index(a) for a in ("1", "4", "6", "12", "15")}
    assert k.smooth[i["6"]] > plain.smooth[i["6"]] + 1.0               # the cheeks raised
    assert k.smooth[i["12"]] > plain.smooth[i["12"]]                   # the furrow deepened
    assert k.smooth[i["15"]] == plain.smooth[i["15"]] > 0              # corners still down
    assert (k.smooth[i["1"]], k.smooth[i["4"]]) == (plain.smooth[i["1"]], plain.smooth[i["4"]])
    assert k.tear[1] > plain.tear[1] + 0.02                           # the lower lip drawn down
    assert all(a > b + 0.2 for a, b in zip(k.lids, plain.lids))       # the heavier upper lids
    assert k.slant == plain.slant > 0                                 # the oblique sad eye kept
    assert max(k.lids) <= 1.0


def test_rims_sad_grows_with_intensity(sources):
    expr = sources["grace_hopper"].expression
    i6 = K.SMOOTH_AUS.index("6")
    ups, lids = [], []
    for t in (0.25, 0.5, 0.75):
        act = activation(Motion.emotion("sad", t))
        k, plain = coefficients(act, expr), _plain(act, expr)
        ups.append(k.smooth[i6] - plain.smooth[i6])
        lids.append(k.lids[0] - plain.lids[0])
    assert all(b > a > 0 for a, b in zip(ups, ups[1:])), ups
    assert all(b > a > 0 for a, b in zip(lids, lids[1:])), lids


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "sad"])
def test_other_emotions_are_unchanged(sources, emotion):
    expr = sources["grace_hopper"].expression
    act = activation(Motion.emotion(emotion, 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    assert same_frame(k, plain)


def test_the_glasses_portraits_sadness_is_its_own(sources):
    """Rims clear of the lids: this rendering never applies there."""
    expr = sources["glasses"].expression
    act = activation(Motion.emotion("sad", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    assert same_frame(k, plain, paint=False, creases=False)


@pytest.mark.parametrize("intensity", [0.5, 0.8, 1.0])
def test_no_fold_overs(sources, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam."""
    bad, low = folds_off_the_seam(sources["grace_hopper"], Motion.emotion("sad", intensity))
    assert bad == 0, f"{intensity}: {bad} folded pixels, min det {low:.3f}"

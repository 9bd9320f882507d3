"""Disgust on glasses whose rims rest on the lids (engine/mesh/canvas.py: _rims_disgust,
RIMS_DISGUST, RIMS_DISGUST_SQUINT).

grace_hopper's rims hold her brows and her lenses magnify her wide eyes: disgust's usual open,
down-turned mouth read angry-neutral there. On such a photo (PhotoExpression.rims_rest: rims
and not rims_clear) the face scrunches instead: the nose wrinkled harder (with it the sneer), the cheeks
raised and the lids tightened under lowered upper lids, the lower lip pushed down less and the
chin raiser off. Only disgust (the one emotion with AU9) changes, and only on that photo; the
`glasses` portrait (rims clear of the lids) keeps its own rendering. Checked on the warp's
coefficients and on the backward map (no fold-overs).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from avatar_testkit.portraits import portrait_rgb, require_portrait  # noqa: E402
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
    """The frame's coefficients with the rims' disgust rendering switched off."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(K, "RIMS_DISGUST", {})
        mp.setattr(K, "RIMS_DISGUST_SQUINT", 0.0)
        return coefficients(act, expr)


def test_only_grace_hopper_has_rims_on_the_lids(engine, sources):
    g, gl = sources["grace_hopper"].expression, sources["glasses"].expression
    assert g.rims and not g.rims_clear and g.rims_rest
    assert gl.rims and gl.rims_clear and not gl.rims_rest


@pytest.mark.parametrize("name", ["astronaut", "smile_teeth", "surprised", "smile_outdoor"])
def test_other_photos_wear_no_glasses(engine, name):
    require_portrait(name)
    e = engine.prepare(portrait_rgb(name)).expression
    assert not e.rims and not e.rims_rest


def test_rims_disgust_scrunches_the_face(sources):
    """On grace_hopper: the nose wrinkled harder and the sneer with it, the cheeks up, the chin
    raiser off, the lower lip pushed down less, the upper lids lower and the lower lids higher."""
    expr = sources["grace_hopper"].expression
    act = activation(Motion.emotion("disgusted", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    i = {a: K.SMOOTH_AUS.index(a) for a in ("9", "10s", "6", "17")}
    assert k.smooth[i["9"]] > plain.smooth[i["9"]] + 0.9               # the nose wrinkled harder
    assert k.smooth[i["10s"]] > plain.smooth[i["10s"]] + 1.0           # its one-sided sneer
    assert k.smooth[i["6"]] > plain.smooth[i["6"]] + 1.0               # the cheeks raised
    assert k.smooth[i["17"]] < plain.smooth[i["17"]] - 0.8             # the chin raiser off
    assert k.tear[1] < plain.tear[1] - 0.02                           # the lower lip less far down
    assert all(a > b + 0.1 for a, b in zip(k.lids, plain.lids))       # the squint (0.14)
    assert all(a < b for a, b in zip(k.low, plain.low))               # the lower lids pushed up
    assert max(k.lids) <= 1.0


def test_rims_disgust_grows_with_intensity(sources):
    expr = sources["grace_hopper"].expression
    i9 = K.SMOOTH_AUS.index("9")
    ups, lids = [], []
    for t in (0.25, 0.5, 0.75):
        act = activation(Motion.emotion("disgusted", t))
        k, plain = coefficients(act, expr), _plain(act, expr)
        ups.append(k.smooth[i9] - plain.smooth[i9])
        lids.append(k.lids[0] - plain.lids[0])
    assert all(b > a > 0 for a, b in zip(ups, ups[1:])), ups
    assert all(b > a > 0 for a, b in zip(lids, lids[1:])), lids


@pytest.mark.parametrize("emotion", [e for e in EMOTIONS if e != "disgusted"])
def test_other_emotions_are_unchanged(sources, emotion):
    expr = sources["grace_hopper"].expression
    act = activation(Motion.emotion(emotion, 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    assert same_frame(k, plain)


def test_the_glasses_portraits_disgust_is_its_own(sources):
    """Rims clear of the lids: this rendering never applies there."""
    expr = sources["glasses"].expression
    act = activation(Motion.emotion("disgusted", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr)
    assert same_frame(k, plain, paint=False, creases=False)


@pytest.mark.parametrize("intensity", [0.5, 0.8, 1.0])
def test_no_fold_overs(sources, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam."""
    bad, low = folds_off_the_seam(sources["grace_hopper"], Motion.emotion("disgusted", intensity))
    assert bad == 0, f"{intensity}: {bad} folded pixels, min det {low:.3f}"

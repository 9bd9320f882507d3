"""Fear keyed on the photo's eyes (engine/mesh/canvas.py: WIDE_FEAR_*, NARROW_FEAR_*).

On a wide-eyed photo whose brows are not raised (expression.PhotoExpression.wide: the astronaut)
the usual fear's tall dark opening under wide eyes read as surprise; there fear takes EMFACS's
other prototype, the lips stretched apart over clenched teeth with the jaw not dropped and the
brows drawn together harder. On a narrow-eyed photo (PhotoExpression.narrow_eyes: smile_outdoor)
its eyes showed little white and fear read sad; there the lower lids drop further, the upper lids
rise a little more and the brows are drawn together less. On glasses whose top rims sit clear of
the lids (PhotoExpression.rims_clear: the glasses portrait) the eyes behind the lenses carry little,
and fear's mouth carries it: the lips still stretched, the corners pulled down and back, the lower
lip pulled down less (canvas._rims_fear). No other emotion changes, and no other portrait has any of these traits. Checked on the warp's coefficients and on landmarks
FaceMesh re-detects in the renders (units of the inter-ocular distance d, as in
tests/test_mesh_engine.py, whose detector noise is at most 0.02, 0.007 for the eye opening).
"""
from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from avatar_testkit.portraits import portrait_rgb, require_portrait  # noqa: E402
from engine.facs import activation  # noqa: E402
from engine.mesh import MeshEngine  # noqa: E402
from engine.mesh import canvas as K  # noqa: E402
from engine.mesh.canvas import coefficients  # noqa: E402
from engine.motion import Motion  # noqa: E402
from mesh_checks import folds_off_the_seam, prepared, same_frame  # noqa: E402
from test_mesh_engine import face_metrics  # noqa: E402



@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module")
def sources(engine):
    return prepared(engine, ("astronaut", "smile_outdoor", "glasses"))


@pytest.fixture(scope="module")
def metrics(engine, sources) -> dict[str, dict[str, dict[str, float]]]:
    """Re-detected measures of fear and surprise per portrait, relative to the neutral render's."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for name, src in sources.items():
        if name == "glasses":
            continue
        n = face_metrics(engine.render([(src, Motion())])[0])
        out[name] = {}
        for e in ("fearful", "surprised"):
            m = face_metrics(engine.render([(src, Motion.emotion(e, 1.0))])[0], n["d"])
            out[name][e] = {k: m[k] - n[k] for k in m}
    return out


def test_the_traits(engine, sources):
    wide, narrow = sources["astronaut"].expression, sources["smile_outdoor"].expression
    assert wide.wide and not wide.narrow_eyes
    assert narrow.narrow_eyes and not narrow.wide


@pytest.mark.parametrize("name", ["grace_hopper", "smile_teeth", "surprised", "glasses"])
def test_other_photos_have_neither(engine, name):
    """Their fear (a hit on the first three) stays as it was."""
    require_portrait(name)
    e = engine.prepare(portrait_rgb(name)).expression
    assert not e.wide and not e.narrow_eyes


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut", "smile_teeth", "surprised", "smile_outdoor"])
def test_only_the_glasses_portrait_has_rims_clear_of_the_lids(engine, sources, name):
    """grace_hopper wears glasses too, but her rims rest on her lids (rigid.rim_lift at its floor):
    her fear (fearful 0.61) keeps the usual rendering."""
    require_portrait(name)
    e = sources[name].expression if name in sources else engine.prepare(portrait_rgb(name)).expression
    assert not e.rims_clear
    assert sources["glasses"].expression.rims_clear


def _plain(act, expr, trait: str):
    """The frame's coefficients on the same photo read without one trait."""
    if trait == "rims_clear":
        return coefficients(act, dataclasses.replace(expr, rims_clear=False))
    prop = "wide" if trait == "wide" else "narrow_eyes"
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(type(expr), prop, property(lambda self: False))
        return coefficients(act, expr)


def test_wide_eyed_fear_stretches_the_lips_over_clenched_teeth(sources):
    expr = sources["astronaut"].expression
    act = activation(Motion.emotion("fearful", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr, "wide")
    stretch = act.action_units[20] - K.STRETCH_KNEE
    # No tall opening (the upper teeth are not faded for it), the jaw only fear's own small drop.
    assert k.teeth == 1.0 and plain.teeth < 0.5
    assert k.tear[2] == pytest.approx(K.STRETCH_JAW * stretch, abs=1e-6) and plain.tear[2] > 2 * k.tear[2]
    # The lower teeth painted up to the upper ones (clenched), the brows drawn together harder.
    assert k.lower_teeth > plain.lower_teeth >= 1.0
    i4 = K.SMOOTH_AUS.index("4")
    assert k.smooth[i4] > plain.smooth[i4] + 0.3


def test_narrow_eyed_fear_opens_the_eyes_further(sources):
    expr = sources["smile_outdoor"].expression
    act = activation(Motion.emotion("fearful", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr, "narrow")
    assert all(a > b + 0.1 for a, b in zip(k.low, plain.low))      # the lower lids drop further
    # The upper lids rise further (without the trait they still rise on the smile's rest opening,
    # canvas.CHEEK_WIDE, 0.06 of it here; fear's further rise is the larger of the two).
    assert all(a < b - 0.05 for a, b in zip(k.lids, plain.lids))
    assert max(k.low) <= 0.55 and min(k.lids) >= -0.6               # within the eye's bounds


def test_rims_clear_fear_stretches_a_flatter_opening(sources):
    """On the glasses portrait: its corners pulled down, the lips still stretched sideways (FACS's AU20;
    a little less, so the jaw goes less far down with the stretch), the lower lip pulled down less,
    the upper lids free to rise a little more."""
    expr = sources["glasses"].expression
    act = activation(Motion.emotion("fearful", 1.0))
    k, plain = coefficients(act, expr), _plain(act, expr, "rims_clear")
    i15, i20 = K.SMOOTH_AUS.index("15"), K.SMOOTH_AUS.index("20")
    assert k.smooth[i15] > plain.smooth[i15] + 1.0       # corners down
    # The stretcher eased by AU20 -0.35 (and RIMS_FEAR's share of that stretch), not run backwards to
    # draw the corners in (the earlier rendering, over 1.0 below): FaceMesh finds the corners 0.07 d
    # further apart than neutral's (test_mesh_engine.py's portrait checks).
    assert plain.smooth[i20] - 0.8 < k.smooth[i20] < plain.smooth[i20]
    assert k.tear[1] < plain.tear[1] and k.tear[2] < plain.tear[2]       # lower lip and jaw less far down
    assert all(a < b - 0.1 for a, b in zip(k.lids, plain.lids))   # the upper lids rise further
    assert min(k.lids) >= -0.6


def test_rims_clear_fear_grows_with_intensity(sources):
    """In proportion to fear's lip stretch at every intensity (the other emotions, where AU1, AU4 and
    AU5 do not meet, are unchanged: test_other_emotions_are_unchanged)."""
    expr = sources["glasses"].expression
    i15 = K.SMOOTH_AUS.index("15")
    ups = []
    for i in (0.25, 0.5, 0.75, 1.0):
        act = activation(Motion.emotion("fearful", i))
        k, plain = coefficients(act, expr), _plain(act, expr, "rims_clear")
        ups.append(k.smooth[i15] - plain.smooth[i15])
    assert all(b > a > 0 for a, b in zip(ups, ups[1:])), ups


@pytest.mark.parametrize("name,trait", [("astronaut", "wide"), ("smile_outdoor", "narrow"),
                                        ("glasses", "rims_clear")])
def test_other_emotions_are_unchanged(sources, name, trait):
    expr = sources[name].expression
    # Rims clear of the lids also render disgust, sadness and surprise their own way
    # (canvas._clear_disgust, _clear_sad, _clear_surprise: test_mesh_glasses_wearers.py).
    clear = trait == "rims_clear"
    for e in ("happy", "angry") + (() if clear else ("surprised", "sad", "disgusted")):
        act = activation(Motion.emotion(e, 1.0))
        k, plain = coefficients(act, expr), _plain(act, expr, trait)
        assert same_frame(k, plain, creases=False), e


def test_wide_eyed_fear_never_drops_the_jaw(sources):
    """In proportion to fear's lip stretch at every intensity: keyed to the stretch beyond its knee,
    the jaw dropped up to intensity 0.67 and closed again above it."""
    expr = sources["astronaut"].expression
    for i in (0.3, 0.5, 0.7):
        act = activation(Motion.emotion("fearful", i))
        k, plain = coefficients(act, expr), _plain(act, expr, "wide")
        assert k.tear[2] <= K.STRETCH_JAW * max(0.0, act.action_units[20] - K.STRETCH_KNEE) + 1e-6, i
        assert plain.tear[2] > k.tear[2] + 0.02, i


def test_narrow_eyed_fear_starts_at_the_knee(sources):
    """Its eyes only open further with intensity: below the lip stretch's knee, nothing changes."""
    expr = sources["smile_outdoor"].expression
    act = activation(Motion.emotion("fearful", 0.6))
    k, plain = coefficients(act, expr), _plain(act, expr, "narrow")
    assert k.low == plain.low and k.lids == plain.lids and np.array_equal(k.smooth, plain.smooth)


def test_wide_eyed_fear_moves_the_face_the_facs_way(metrics):
    """Measured: lips 0.12 d apart (0.33 with the tall opening, surprise 0.45), inner brows 0.045 d
    closer (0.00), mouth 0.093 d wider, eyes 0.029 d more open."""
    f, s = metrics["astronaut"]["fearful"], metrics["astronaut"]["surprised"]
    assert f["lips_apart"] < 0.2 and f["lips_apart"] < 0.5 * s["lips_apart"], f
    assert f["inner_brow_gap"] < -0.02, f
    assert f["mouth_width"] > 0.06 and f["eye_open"] > 0.02 and f["brow_y"] < -0.03, f


def test_narrow_eyed_fear_opens_the_eyes_the_facs_way(metrics):
    """Measured: eyes 0.067 d more open (0.027 without; surprise 0.022), brows 0.114 d higher
    (0.061 without)."""
    f, s = metrics["smile_outdoor"]["fearful"], metrics["smile_outdoor"]["surprised"]
    assert f["eye_open"] > 0.045 and f["eye_open"] > s["eye_open"] + 0.02, f
    assert f["brow_y"] < -0.08 and f["mouth_width"] > 0.035, f


@pytest.mark.parametrize("name,intensity", [(n, i) for n in ("astronaut", "smile_outdoor", "glasses")
                                             for i in (0.8, 1.0)])
def test_no_fold_overs(sources, name, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam."""
    bad, low = folds_off_the_seam(sources[name], Motion.emotion("fearful", intensity))
    assert bad == 0, f"{name} {intensity}: {bad} folded pixels, min det {low:.3f}"

"""The `surprised` portrait (tests/portraits.py: a round open mouth, raised brows, wide eyes):
what the mesh engine reads in it and how anger, disgust and fear are rendered from it.

On that photo open-mouthed anger made the narrow mouth a round O again and read fearful, and
fear's full brow lift on top of the photo's own raise read surprised (bench/fidelity.md). So
(engine/mesh/canvas.py, PRESS, DISGUST_*, FROWN_BROW_UNDO, RAISED_FEAR_*): anger presses the
lips shut, disgust keeps the jaw shut under its raised upper lip, frowns take the photo's
raised brows and wide eyes down from where they are, fear's inner lift is cut and made up by
its outer lift, and sadness's inner lift is cut (RAISED_SAD_*). Checked here on
the warp's coefficients and on landmarks FaceMesh re-detects in the renders (units of the
inter-ocular distance d, as in tests/test_mesh_engine.py).
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from avatar_testkit.portraits import portrait_rgb, require_portrait  # noqa: E402
from engine.facs import activation  # noqa: E402
from engine.mesh import MeshEngine  # noqa: E402
from engine.mesh.canvas import coefficients  # noqa: E402
from engine.motion import Motion  # noqa: E402
from mesh_checks import folds_off_the_seam, prepared  # noqa: E402
from test_mesh_engine import face_metrics  # noqa: E402

NAME = "surprised"



@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module")
def src(engine):
    return prepared(engine, (NAME,))[NAME]


@pytest.fixture(scope="module")
def metrics(engine, src) -> dict[str, dict[str, float]]:
    """Re-detected measures per emotion, relative to the neutral render's."""
    n = face_metrics(engine.render([(src, Motion())])[0])
    out = {"neutral": n}
    for e in ("angry", "disgusted", "fearful", "surprised"):
        m = face_metrics(engine.render([(src, Motion.emotion(e, 1.0))])[0], n["d"])
        out[e] = {k: m[k] - n[k] for k in m}
    return out


def test_the_photo_reads_round_mouthed_raised_and_wide_eyed(src):
    e = src.expression
    assert e.round_mouth and e.raised
    # Its brows sit inside their dead zone (nothing of them in aus) but above the reference.
    assert "1" not in e.aus and e.brow_rest.get("1", 0.0) > 0.1
    # Its wide eyes are brought to the dead zone's edge at rest, to the reference under a frown.
    assert e.eye_scale_full < e.eye_scale[0] < 1.0


@pytest.mark.parametrize("name", ["astronaut", "smile_teeth", "glasses"])
def test_other_photos_are_not(engine, name):
    """The smiling photos' open mouths are not round, and none of them frowns or fears from a
    raised-brow start (their renders of anger, disgust and fear stay as they were)."""
    require_portrait(name)
    e = engine.prepare(portrait_rgb(name)).expression
    assert e.mouth_open and not e.round_mouth and not e.raised


def test_anger_presses_the_round_mouth_shut(src, metrics):
    k = coefficients(activation(Motion.emotion("angry", 1.0)), src.expression)
    assert float(k.tear.sum()) == 0.0 and k.close > 1.0   # no opening; the photo's gap closed past 1
    a = metrics["angry"]
    assert metrics["neutral"]["lips_apart"] + a["lips_apart"] < 0.02, a   # measured -0.01
    assert a["inner_brow_y"] > 0.06, a   # brows down (measured 0.13)
    assert a["eye_open"] < -0.03, a      # the glare (measured -0.054)


def test_disgust_raises_the_upper_lip_over_a_shut_jaw(src, metrics):
    k = coefficients(activation(Motion.emotion("disgusted", 1.0)), src.expression)
    assert k.tear[0] > 0.05 and k.tear[1] == 0.0 and k.tear[2] == 0.0
    d = metrics["disgusted"]
    assert d["upper_lip_y"] < -0.06, d   # measured -0.12
    assert d["inner_brow_y"] > 0.06, d   # measured 0.13
    assert d["eye_open"] < -0.03, d      # measured -0.048


def test_fear_raises_flat_brows_drawn_together(src, metrics):
    """Fear's eyes widen, its lips stretch and its brows rise (the FACS way, tests/test_mesh_engine.py),
    from the photo's own raise: its inner lift is cut (the full one read surprised), its outer lift
    kept and the brows drawn together harder (EMFACS 1+2+4: flat, knitted brows, not surprise's
    arch; canvas.RAISED_FEAR_*). Measured: brows 0.044 d up, eyes +0.041, lips +0.12."""
    from engine.mesh.canvas import SMOOTH_AUS

    f = metrics["fearful"]
    assert f["eye_open"] > 0.02 and f["mouth_width"] > 0.035 and f["brow_y"] < -0.03, f
    fear = activation(Motion.emotion("fearful", 1.0))
    k, plain = coefficients(fear, src.expression), coefficients(fear)
    i = {a: SMOOTH_AUS.index(a) for a in ("1", "2", "4w")}
    assert k.smooth[i["1"]] < 0.5 * plain.smooth[i["1"]]          # the inner lift cut
    assert k.smooth[i["2"]] > plain.smooth[i["2"]] + 0.5          # the outer lift kept
    assert k.smooth[i["4w"]] > plain.smooth[i["4w"]] + 0.5        # drawn together harder
    assert k.tear[2] < plain.tear[2]                              # a less tall opening


def test_sadness_lifts_its_inner_brows_less(src):
    """Sadness's inner lift and narrow frown are cut over the photo's raise (canvas.RAISED_SAD_*):
    the full lift peaked the inner brows into a tent that FaceMesh lost (tests/test_mesh_engine.py
    checks the lift it finds)."""
    from engine.mesh.canvas import SMOOTH_AUS

    sad = activation(Motion.emotion("sad", 1.0))
    k, plain = coefficients(sad, src.expression), coefficients(sad)
    i = {a: SMOOTH_AUS.index(a) for a in ("1", "4")}
    assert 0.5 * plain.smooth[i["1"]] < k.smooth[i["1"]] < 0.9 * plain.smooth[i["1"]]
    assert k.smooth[i["4"]] < 0.8 * plain.smooth[i["4"]]


@pytest.mark.parametrize("emotion,intensity", [(e, i) for e in ("angry", "disgusted", "fearful") for i in (0.6, 1.0)]
                         + [("blend", 1.0)])
def test_no_fold_overs(src, emotion, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam. Undoing the photo's inner brow raise further than canvas.FROWN_INNER_MAX folded
    the skin at the inner eye corners (33 pixels for disgust). (This photo's closed mouth has a
    seam where the lips meet with nothing painted, so the tearing bound is not checked here.)"""
    motion = (Motion(emotions={"angry": 1.0, "disgusted": 1.0, "sad": 1.0}) if emotion == "blend"
              else Motion.emotion(emotion, intensity))
    bad, low = folds_off_the_seam(src, motion)
    assert bad == 0, f"{emotion} {intensity}: {bad} folded pixels, min det {low:.3f}"

"""The glasses wearers' own renderings of disgust and sadness (engine/mesh/canvas.py).

Behind lenses the eyes carry little and rims hide or hold the brows, so on these photos the
judge read disgust and sadness as anger, neutral or a wail. Four renderings reshape them, each
keyed on one kind of photo and tested the same ways (their coefficients against the same frame
with the rendering switched off, their growth with intensity, every other emotion and the other
glasses wearer untouched, no fold-overs):

- ``rims_disgust`` (_rims_disgust, RIMS_DISGUST, RIMS_DISGUST_SQUINT): rims resting on the lids
  (PhotoExpression.rims_rest, grace_hopper): the face scrunches, the nose wrinkled harder (and the
  sneer with it), the cheeks raised and the lids tightened under a squint, the lower lip pushed
  down less and the chin raiser off.
- ``rims_sad`` (_rims_sad, RIMS_SAD, RIMS_SAD_SQUINT): the same photo's sadness: the cheeks raised
  (EMFACS's 6+15) under heavier upper lids, the lips parted a little with the lower lip drawn down,
  AU12's field a little (the engine's nearest to AU11's deeper furrow) while the corners stay down.
- ``clear_disgust`` (_clear_disgust, RIMS_CLEAR_DISGUST, RIMS_CLEAR_DIS_NARROW): rims clear of the
  lids (PhotoExpression.rims_clear, the `glasses` portrait): the face scrunches round the nose, the
  nose wrinkled harder (its sneer and folds raise the upper lip) with AU10's tear off, the lower
  lids tightened, the lips pushed forward and tightened, not pressed, the chin raiser mostly off.

Both disgust renderings grow with the square of AU9's share (half an intensity shows a quarter).
``clear_sad`` (_clear_sad, RIMS_CLEAR_SAD): the `glasses` portrait's sadness lifts the inner brows
further and pushes them down less (AU1 up, AU4 eased), its rims clear of them rising unbent (FACS's
raised inner brows, which FaceMesh found too low there; tests/test_mesh_engine.py).
``clear_surprise`` (_clear_surprise, RIMS_CLEAR_SURPRISE): the `glasses` portrait's surprise lifts
the inner brows less (the photo's own brows slant inner-up: a level arch, not a worried peak) and
tightens the lips less (relaxed, EMFACS's 1+2+5+26/27); its brows still raised, its rims unbent.
``rims_fear_brows`` (_rims_fear_brows, RIMS_FEAR_BROWS): grace_hopper's fear raises the brows
further (AU1, AU2), her rigid top rims rising with them as one piece.
"""
from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from avatar_testkit.portraits import portrait_rgb, require_portrait  # noqa: E402
from engine.mesh import MeshEngine  # noqa: E402
from engine.mesh import canvas as K  # noqa: E402
from engine.mesh.canvas import Coefficients  # noqa: E402
from engine.mesh.rigid import rigid_weights  # noqa: E402
from engine.motion import EMOTIONS, Motion  # noqa: E402
from mesh_checks import folds_off_the_seam, keyed_pair, prepared, same_frame  # noqa: E402

# rendering -> (the portrait it applies to, the emotion it reshapes, its constants switched off)
RENDERINGS: dict[str, tuple[str, str, dict[str, object]]] = {
    "clear_sad": ("glasses", "sad", {"RIMS_CLEAR_SAD": {}}),
    "clear_surprise": ("glasses", "surprised", {"RIMS_CLEAR_SURPRISE": {}}),
    "rims_disgust": ("grace_hopper", "disgusted", {"RIMS_DISGUST": {}, "RIMS_DISGUST_SQUINT": 0.0}),
    "rims_sad": ("grace_hopper", "sad", {"RIMS_SAD": {}, "RIMS_SAD_SQUINT": 0.0}),
    "clear_disgust": ("glasses", "disgusted", {"RIMS_CLEAR_DISGUST": {}, "RIMS_CLEAR_DIS_NARROW": 0.0}),
    "rims_fear_brows": ("grace_hopper", "fearful", {"RIMS_FEAR_BROWS": {}}),
}
OTHER = {"grace_hopper": "glasses", "glasses": "grace_hopper"}


@pytest.fixture(scope="module")
def engine() -> MeshEngine:
    return MeshEngine()


@pytest.fixture(scope="module")
def sources(engine):
    return prepared(engine, ("grace_hopper", "glasses"))


def _pair(sources, rendering: str, portrait: str, emotion: str, t: float = 1.0) -> tuple[Coefficients, Coefficients]:
    """One frame's coefficients with the rendering, and with it switched off."""
    return keyed_pair(sources[portrait].expression, RENDERINGS[rendering][2], emotion, t)


def _rise(sources, rendering: str, au: str, t: float) -> tuple[float, float]:
    """What the rendering adds to one action unit's gain, and to the first eye's upper lid."""
    portrait, emotion, _ = RENDERINGS[rendering]
    k, plain = _pair(sources, rendering, portrait, emotion, t)
    i = K.SMOOTH_AUS.index(au)
    return float(k.smooth[i] - plain.smooth[i]), k.lids[0] - plain.lids[0]


def test_only_grace_hopper_has_rims_on_the_lids(sources):
    g, gl = sources["grace_hopper"].expression, sources["glasses"].expression
    assert g.rims and not g.rims_clear and g.rims_rest
    assert gl.rims and gl.rims_clear and not gl.rims_rest


@pytest.mark.parametrize("name", ["astronaut", "smile_teeth", "surprised", "smile_outdoor"])
def test_other_photos_wear_no_glasses(engine, name):
    require_portrait(name)
    e = engine.prepare(portrait_rgb(name)).expression
    assert not e.rims and not e.rims_rest and not e.rims_clear


def test_rims_disgust_scrunches_the_face(sources):
    """On grace_hopper: the nose wrinkled harder and the sneer with it, the cheeks up, the chin
    raiser off, the lower lip pushed down less, the upper lids lower and the lower lids higher."""
    k, plain = _pair(sources, "rims_disgust", "grace_hopper", "disgusted")
    i = {a: K.SMOOTH_AUS.index(a) for a in ("9", "10s", "6", "17")}
    assert k.smooth[i["9"]] > plain.smooth[i["9"]] + 0.9               # the nose wrinkled harder
    assert k.smooth[i["10s"]] > plain.smooth[i["10s"]] + 1.0           # its one-sided sneer
    assert k.smooth[i["6"]] > plain.smooth[i["6"]] + 1.0               # the cheeks raised
    assert k.smooth[i["17"]] < plain.smooth[i["17"]] - 0.8             # the chin raiser off
    assert k.tear[1] < plain.tear[1] - 0.02                           # the lower lip less far down
    assert all(a > b + 0.1 for a, b in zip(k.lids, plain.lids))       # the squint (0.14)
    assert all(a < b for a, b in zip(k.low, plain.low))               # the lower lids pushed up
    assert max(k.lids) <= 1.0


def test_rims_sad_lifts_the_cheeks_and_parts_the_lips(sources):
    """On grace_hopper: the cheeks up, the upper lids lower, the lower lip further down, the
    corners still pulled down (AU15 untouched), the brows' AU1 and AU4 untouched."""
    k, plain = _pair(sources, "rims_sad", "grace_hopper", "sad")
    i = {a: K.SMOOTH_AUS.index(a) for a in ("1", "4", "6", "12", "15")}
    assert k.smooth[i["6"]] > plain.smooth[i["6"]] + 1.0               # the cheeks raised
    assert k.smooth[i["12"]] > plain.smooth[i["12"]]                   # the furrow deepened
    assert k.smooth[i["15"]] == plain.smooth[i["15"]] > 0              # corners still down
    assert (k.smooth[i["1"]], k.smooth[i["4"]]) == (plain.smooth[i["1"]], plain.smooth[i["4"]])
    assert k.tear[1] > plain.tear[1] + 0.02                           # the lower lip drawn down
    assert all(a > b + 0.2 for a, b in zip(k.lids, plain.lids))       # the heavier upper lids
    assert k.slant == plain.slant > 0                                 # the oblique sad eye kept
    assert max(k.lids) <= 1.0


def test_clear_disgust_scrunches_round_the_nose(sources):
    """On the glasses portrait: the nose wrinkled harder (and its sneer), the upper lip raised by it
    rather than by AU10's tear (no teeth bared), the lower lids tightened, the lips pushed forward and
    tightened but not pressed (the presser holds the upper lip down), the chin raiser mostly off."""
    k, plain = _pair(sources, "clear_disgust", "glasses", "disgusted")
    i = {a: K.SMOOTH_AUS.index(a) for a in ("9", "10s", "7", "17", "18", "23", "24", "20")}
    assert plain.smooth[i["9"]] + 0.3 < k.smooth[i["9"]] < plain.smooth[i["9"]] + 0.6    # wrinkled harder
    assert k.smooth[i["10s"]] > plain.smooth[i["10s"]] + 0.4           # its one-sided sneer
    assert k.tear[0] < 0.5 * plain.tear[0]                             # AU10's tear mostly off
    assert k.smooth[i["7"]] > plain.smooth[i["7"]] + 1.0               # the lower lids tightened
    assert k.smooth[i["18"]] > plain.smooth[i["18"]] + 0.5             # the lips pushed forward
    assert k.smooth[i["23"]] > plain.smooth[i["23"]] + 0.5             # and tightened
    assert k.smooth[i["24"]] == plain.smooth[i["24"]] == 0             # not pressed
    assert k.smooth[i["20"]] < plain.smooth[i["20"]] - 0.5             # the corners drawn in a little
    assert k.smooth[i["17"]] < plain.smooth[i["17"]] - 0.5             # the chin raiser mostly off


def test_clear_sad_lifts_the_inner_brows(sources):
    """On the glasses portrait: sadness's inner brows raised further (AU1) and pushed down less (AU4
    eased; still drawn together), the corners and the lids' closing as they were."""
    k, plain = _pair(sources, "clear_sad", "glasses", "sad")
    i = {a: K.SMOOTH_AUS.index(a) for a in ("1", "2", "4", "15")}
    assert k.smooth[i["1"]] > plain.smooth[i["1"]] + 0.4               # the inner brows higher
    assert 0.5 < k.smooth[i["4"]] < plain.smooth[i["4"]] - 0.2         # pushed down less, still drawn in
    assert k.smooth[i["2"]] == plain.smooth[i["2"]] and k.smooth[i["15"]] == plain.smooth[i["15"]] > 0
    assert k.lids == plain.lids and k.tear.tolist() == plain.tear.tolist()
    assert 0 < k.slant < plain.slant                                   # follows min(AU1, AU4)
    ups = [_rise(sources, "clear_sad", "1", t)[0] for t in (0.25, 0.5, 0.75, 1.0)]
    assert all(b > a > 0 for a, b in zip(ups, ups[1:])), ups


def test_clear_sad_keeps_the_rims_rigid(sources):
    """Its stronger lift moves the top rims as one piece, as test_mesh_engine.py's
    test_glasses_frames_stay_rigid checks without the photo's renderings (there up to a tenth of the
    free field remains where the frame's weight is 0.9)."""
    c = sources["glasses"].crop
    rigid, top = rigid_weights(c.image, c.points, c.frame, c.grid.nodes)
    frame_top, frame_low = (rigid > 0.9) & (top > 0.9), (rigid > 0.9) & (top < 0.1)
    k, plain = _pair(sources, "clear_sad", "glasses", "sad")
    fields = [np.tensordot(x.smooth[:-5], c.smooth[:-5], axes=1).reshape(-1, 2) / c.frame.d for x in (k, plain)]
    assert (fields[0][frame_top] @ c.frame.v).mean() < (fields[1][frame_top] @ c.frame.v).mean() - 0.02  # they rise
    assert np.ptp(fields[0][frame_top], axis=0).max() < 0.035
    assert np.abs(fields[0][frame_low]).max() < 0.02


def test_clear_surprise_arches_the_brows(sources):
    """On the glasses portrait: surprise's inner lift (AU1) cut by a quarter, the brows still well
    raised, the outer lift (AU2), the lids and the jaw's opening as they were, the lip tightener
    (AU23) eased; the cut grows with intensity (half an intensity moves the face less)."""
    k, plain = _pair(sources, "clear_surprise", "glasses", "surprised")
    i = {a: K.SMOOTH_AUS.index(a) for a in ("1", "2", "4", "23")}
    assert 0.7 < k.smooth[i["1"]] < plain.smooth[i["1"]] - 0.25         # less inner lift, still raised
    assert k.smooth[i["2"]] == plain.smooth[i["2"]] > 0.5               # the outer ends as they were
    assert k.smooth[i["4"]] == plain.smooth[i["4"]]                     # no frown
    assert 0.5 < k.smooth[i["23"]] < plain.smooth[i["23"]] - 0.25       # the lips tense less
    assert k.lids == plain.lids and k.low == plain.low
    assert k.tear.tolist() == plain.tear.tolist() and k.teeth == plain.teeth
    cuts = [-_rise(sources, "clear_surprise", "1", t)[0] for t in (0.25, 0.5, 0.75, 1.0)]
    assert all(b > a > 0 for a, b in zip(cuts, cuts[1:])), cuts


def test_clear_surprise_keeps_the_rims_rigid(sources):
    """Its brows move the top rims as one piece (test_clear_sad_keeps_the_rims_rigid's bounds), the
    bottom rims not at all, and the rims still rise against the rest frame."""
    c = sources["glasses"].crop
    rigid, top = rigid_weights(c.image, c.points, c.frame, c.grid.nodes)
    frame_top, frame_low = (rigid > 0.9) & (top > 0.9), (rigid > 0.9) & (top < 0.1)
    k, _ = _pair(sources, "clear_surprise", "glasses", "surprised")
    field = np.tensordot(k.smooth[:-5], c.smooth[:-5], axes=1).reshape(-1, 2) / c.frame.d
    assert (field[frame_top] @ c.frame.v).mean() < -0.02
    assert np.ptp(field[frame_top], axis=0).max() < 0.035
    assert np.abs(field[frame_low]).max() < 0.02


def test_rims_fear_brows_raise_the_rims_unbent(sources):
    """Grace Hopper's fear: the brows raised further (AU1, AU2), her top rims rise further as one
    piece (test_clear_sad_keeps_the_rims_rigid's bounds), the bottom rims not at all."""
    c = sources["grace_hopper"].crop
    rigid, top = rigid_weights(c.image, c.points, c.frame, c.grid.nodes)
    frame_top, frame_low = (rigid > 0.9) & (top > 0.9), (rigid > 0.9) & (top < 0.1)
    k, plain = _pair(sources, "rims_fear_brows", "grace_hopper", "fearful")
    i = {a: K.SMOOTH_AUS.index(a) for a in ("1", "2")}
    assert k.smooth[i["1"]] > plain.smooth[i["1"]] + 0.2 and k.smooth[i["2"]] > plain.smooth[i["2"]] + 0.4
    assert k.lids == plain.lids and k.tear.tolist() == plain.tear.tolist()
    fields = [np.tensordot(x.smooth[:-5], c.smooth[:-5], axes=1).reshape(-1, 2) / c.frame.d for x in (k, plain)]
    assert (fields[0][frame_top] @ c.frame.v).mean() < (fields[1][frame_top] @ c.frame.v).mean() - 0.005  # they rise
    assert np.ptp(fields[0][frame_top], axis=0).max() < 0.035
    assert np.abs(fields[0][frame_low]).max() < 0.02


@pytest.mark.parametrize("rendering,au,lids", [("rims_disgust", "9", True), ("rims_sad", "6", True),
                                               ("clear_disgust", "18", False)])
def test_grows_with_intensity(sources, rendering, au, lids):
    rises = [_rise(sources, rendering, au, t) for t in (0.25, 0.5, 0.75, 1.0)]
    ups = [r[0] for r in rises]
    assert all(b > a > 0 for a, b in zip(ups, ups[1:])), ups
    if lids:
        closes = [r[1] for r in rises]
        assert all(b > a > 0 for a, b in zip(closes, closes[1:])), closes
    if rendering.endswith("disgust"):
        assert ups[1] < 0.3 * ups[3], ups   # a quarter at half intensity, not a half


@pytest.mark.parametrize("rendering,emotion", [(r, e) for r, (_, own, _) in RENDERINGS.items()
                                               for e in EMOTIONS if e != own])
def test_other_emotions_are_unchanged(sources, rendering, emotion):
    k, plain = _pair(sources, rendering, RENDERINGS[rendering][0], emotion)
    assert same_frame(k, plain)


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_the_other_glasses_wearer_is_untouched(sources, rendering):
    """Rims resting on the lids and rims clear of them never take each other's rendering."""
    portrait, emotion, _ = RENDERINGS[rendering]
    k, plain = _pair(sources, rendering, OTHER[portrait], emotion)
    assert same_frame(k, plain, paint=False, creases=False)


@pytest.mark.parametrize("rendering,intensity", [(r, t) for r in RENDERINGS for t in (0.5, 0.8, 1.0)])
def test_no_fold_overs(sources, rendering, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam."""
    portrait, emotion, _ = RENDERINGS[rendering]
    bad, low = folds_off_the_seam(sources[portrait], Motion.emotion(emotion, intensity))
    assert bad == 0, f"{rendering} {intensity}: {bad} folded pixels, min det {low:.3f}"

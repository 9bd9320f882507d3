"""LivePortrait: visemes -> editor sliders (lip keypoint deltas) and the lip-retargeting target."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.liveportrait import emotions as em
from engine.liveportrait.pipeline import LivePortraitCore, Precision
from engine.motion import Motion
from engine.speech.visemes import MouthPose
from lp_fixtures import needs_reference, seed1_checkpoints
from test_liveportrait_emotions import SRC_EYE, SRC_LIP, _fake_source, _Models

LIP_KPS = {3, 7, 14, 17, 19, 20}  # the keypoints the editor's lip sliders move


def talk(viseme: str, w: float = 1.0, baseline: str = "neutral", **kw) -> em.KeypointEdit:
    m = Motion(mouth=MouthPose.of(**{viseme: w}), baseline=baseline, **kw)
    return em.edit_for_motion(m, SRC_EYE, SRC_LIP)


def test_open_raises_the_lip_target_with_its_weight():
    targets = [talk("open", w).lip_target for w in (0.0, 0.3, 0.6, 1.0)]
    assert targets[0] == pytest.approx(em.LIP_RATIO_CLOSED)
    assert targets == sorted(targets) and targets[-1] == pytest.approx(em.LIP_RATIO_OPEN)
    rel = [talk("open", w, baseline="photo").lip_target for w in (0.3, 1.0)]
    assert SRC_LIP < rel[0] < rel[1]


def test_each_viseme_moves_the_lip_keypoints_its_way():
    closed, rnd, spread, tl = (talk(v) for v in ("closed", "round", "spread", "teeth_lip"))
    neutral = em.edit_for_motion(Motion(), SRC_EYE, SRC_LIP)
    # closed: lips together (target at the closed ratio) and pressed (pursing slider)
    assert closed.lip_target == pytest.approx(em.LIP_RATIO_CLOSED) and closed.lip_one > 0
    # round: pout (kp 19 forward) and purse, a small opening
    assert rnd.lip_zero > 0 and rnd.lip_one > closed.lip_one * 0.5
    assert em.LIP_RATIO_CLOSED < rnd.lip_target < talk("open").lip_target
    # spread: grin slider (kp 20 back and up), lips a little apart
    assert spread.lip_two > 0 and spread.lip_target > neutral.lip_target
    # teeth_lip: the lower lip up (lip_three negative) with the upper teeth shown (grin)
    assert tl.lip_three < 0 and tl.lip_two > 0
    for e in (closed, rnd, spread, tl):
        d = e.expression_delta() - neutral.expression_delta()
        moved = {int(k) for k in np.nonzero(np.abs(d).sum(1) > 1e-9)[0]}
        assert moved and moved <= LIP_KPS, moved
    # pout moves kp 19 along x; grin moves kp 20 along y and z
    d_round = rnd.expression_delta() - neutral.expression_delta()
    d_spread = spread.expression_delta() - neutral.expression_delta()
    assert d_round[19, 0] > 0 and d_spread[20, 1] < 0 and d_spread[20, 2] < 0


def test_speech_keeps_the_emotion_outside_the_mouth():
    happy = em.edit_for_motion(Motion(emotions={"happy": 1.0}), SRC_EYE, SRC_LIP)
    talking = talk("open", emotions={"happy": 1.0})
    assert talking.smile == happy.smile and talking.eye_target == happy.eye_target
    assert talking.lip_target > happy.lip_target


def test_driving_keypoints_move_only_with_speech():
    core = LivePortraitCore(_Models(), Precision(torch.device("cpu")))  # type: ignore[arg-type]
    src = _fake_source()
    edits = [em.edit_for_motion(Motion(), SRC_EYE, SRC_LIP), talk("open"), talk("round"), talk("open", 0.0)]
    with torch.no_grad():
        x = core.driving_keypoints([src] * 4, edits)
    assert not torch.allclose(x[1], x[0], atol=1e-5)
    assert not torch.allclose(x[2], x[1], atol=1e-5)
    assert torch.allclose(x[3], x[0], atol=1e-6)


LIP_IDX = [6, 12, 14, 17, 19, 20]  # LivePortrait's lip keypoints (the official lip_idx)


@needs_reference
def test_speech_on_the_synthetic_checkpoints():
    """The engine on seed-1 weights: speech edits reach the stitched driving keypoints (lip
    keypoints move with the open weight, the round pout moves keypoint 19 forward along x
    before stitching), and rendering stays finite. Synthetic nets draw noise, not faces."""
    from skimage import data

    from engine.liveportrait import load_liveportrait_engine

    eng = load_liveportrait_engine(device="cpu", weights_dir=seed1_checkpoints())
    src = eng.prepare(data.astronaut())
    st = src.state
    motions = [Motion(), Motion(mouth=MouthPose.of(open=0.5)), Motion(mouth=MouthPose.of(open=1.0)),
               Motion(mouth=MouthPose.of(round=1.0)), Motion(mouth=MouthPose.of(open=0.0))]
    edits = [em.edit_for_motion(m, src.eye_ratio, st.lip_ratio) for m in motions]
    with torch.no_grad():
        x = eng.core.driving_keypoints([st] * len(edits), edits)
    lips = lambda i: (x[i, LIP_IDX] - x[0, LIP_IDX]).norm().item()  # noqa: E731
    assert 0 < lips(1) < lips(2)
    assert torch.allclose(x[4], x[0], atol=1e-6)
    d_round = edits[3].expression_delta() - edits[0].expression_delta()
    assert d_round[19, 0] > 0
    frames = eng.render([(src, motions[0]), (src, motions[2])])
    assert all(np.isfinite(f).all() for f in frames)
    assert np.abs(frames[1].astype(int) - frames[0].astype(int)).mean() > 0.1

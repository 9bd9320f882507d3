"""Emotion mapping: FACS activation -> editor sliders -> keypoint offsets (no weights needed)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from engine.facs import activation
from engine.liveportrait import emotions as em
from engine.liveportrait import kp_math
from engine.liveportrait.networks.stitching import StitchingRetargeting
from engine.liveportrait.pipeline import LivePortraitCore, Precision, SourceState
from engine.motion import Motion

SRC_EYE, SRC_LIP = 0.3, 0.05
SMILE_KPS = {(20, 1): -0.01, (14, 1): -0.02, (17, 1): 0.0065, (17, 2): 0.003,
             (13, 1): -0.00275, (16, 1): -0.00275, (3, 1): -0.0035, (7, 1): -0.0035}


def edit(m: Motion) -> em.KeypointEdit:
    return em.edit_from_activation(activation(m), SRC_EYE, SRC_LIP)


def test_neutral_is_the_photo() -> None:
    e = edit(Motion())
    assert e == em.KeypointEdit()
    assert not e.expression_delta().any()


@pytest.mark.parametrize("intensity", [0.1, 0.25, 0.5])
def test_happy_moves_the_smile_keypoints_by_the_editor_coefficients(intensity: float) -> None:
    # happy = AU6 0.8 + AU12 1.0 at expression scale 1.3 (lips part only above 0.5)
    e = edit(Motion.emotion("happy", intensity))
    smile = em.SMILE_PER_AU12 * 1.3 * 1.0 * intensity
    assert e.smile == pytest.approx(smile)
    d = e.expression_delta()
    want = np.zeros((21, 3))
    for (kp, axis), coef in SMILE_KPS.items():
        want[kp, axis] = smile * coef
    np.testing.assert_allclose(d, want, atol=1e-9)
    assert e.lip_target is None  # no mouth opening below intensity 0.5


def test_happy_scales_linearly_and_opens_the_lips_late() -> None:
    d1 = edit(Motion.emotion("happy", 0.2)).expression_delta()
    d2 = edit(Motion.emotion("happy", 0.4)).expression_delta()
    np.testing.assert_allclose(d2, 2 * d1, rtol=1e-6)
    full = edit(Motion.emotion("happy", 1.0))
    assert full.lip_target is not None and full.lip_target > SRC_LIP
    assert full.eye_target is not None and full.eye_target < SRC_EYE  # cheek raiser squint


def test_surprise_raises_brows_widens_eyes_and_opens_mouth() -> None:
    e = edit(Motion.emotion("surprised", 1.0))
    assert e.eyebrow > 0 and e.eye_target is not None and e.eye_target > SRC_EYE
    assert e.lip_target == pytest.approx(SRC_LIP + (em.LIP_OPEN_FULL - SRC_LIP))
    d = e.expression_delta()
    assert d[1, 1] == pytest.approx(e.eyebrow * 0.001) and d[2, 1] == pytest.approx(-e.eyebrow * 0.001)


def test_sad_and_angry_lower_the_brows() -> None:
    sad, angry = edit(Motion.emotion("sad", 1.0)), edit(Motion.emotion("angry", 1.0))
    assert sad.eyebrow < 0 and sad.smile < 0  # AU15 lip-corner depressor
    assert angry.eyebrow < 0 and angry.lip_one > 0  # AU23 -> pursing
    d = sad.expression_delta()
    assert d[1, 0] == pytest.approx(-sad.eyebrow * 0.001)


def test_blink_and_wink_and_gaze_and_pose() -> None:
    from engine.motion import IdleState

    blink = em.edit_from_activation(activation(Motion(idle=IdleState(blink=1.0))), SRC_EYE, SRC_LIP)
    assert blink.eye_target == pytest.approx(0.0) and blink.wink == 0
    wink = edit(Motion().with_controls(eye_right=-1.0))
    assert wink.wink == pytest.approx(em.WINK_FULL) and wink.eye_target is None
    gaze = edit(Motion().with_controls(gaze_x=0.5, gaze_y=-1.0, yaw=10.0, pitch=-5.0, roll=3.0))
    assert gaze.eyeball_x == pytest.approx(0.5 * em.EYEBALL_X_FULL)
    assert gaze.eyeball_y == pytest.approx(em.EYEBALL_Y_FULL)  # looking up
    assert (gaze.d_yaw, gaze.d_pitch, gaze.d_roll) == (10.0, -5.0, 3.0)
    d = gaze.expression_delta()
    assert d[15, 0] == pytest.approx(gaze.eyeball_x * 0.001)
    assert d[11, 1] == pytest.approx(gaze.eyeball_y * -0.001 + (-gaze.eyeball_y / 2) * -0.001)


def test_sliders_stay_in_the_editor_ranges() -> None:
    m = Motion(emotions={"happy": 1.0, "surprised": 1.0, "fearful": 1.0, "disgusted": 1.0})
    e = edit(m.with_controls(smile=1.0, brows=1.0))
    for name, (lo, hi) in em.SLIDER_RANGES.items():
        assert lo <= getattr(e, name) <= hi


def _fake_source() -> SourceState:
    g = torch.Generator().manual_seed(0)
    kp = torch.rand(1, 21, 3, generator=g) - 0.5
    exp = 0.02 * torch.randn(1, 21, 3, generator=g)
    scale, t = torch.tensor([[1.4]]), torch.tensor([[0.05, -0.02, 0.3]])
    angles = torch.tensor([[5.0, -12.0, 3.0]])
    info = {"kp": kp, "exp": exp, "scale": scale, "t": t,
            "pitch": angles[:, 0:1], "yaw": angles[:, 1:2], "roll": angles[:, 2:3]}
    return SourceState(feature_3d=torch.zeros(1), kp_canonical=kp, exp=exp, scale=scale, t=t, angles=angles,
                       x_s=kp_math.transform_keypoint(info), eye_ratio=(SRC_EYE, SRC_EYE), lip_ratio=SRC_LIP)


class _Models:  # render_batch's keypoint stage only touches the stitching MLPs
    def __init__(self) -> None:
        torch.manual_seed(0)
        self.stitching = StitchingRetargeting().eval()


def test_driving_keypoints_apply_the_delta_before_stitching() -> None:
    core = LivePortraitCore(_Models(), Precision(torch.device("cpu")))  # type: ignore[arg-type]
    src = _fake_source()
    happy = edit(Motion.emotion("happy", 0.4))
    with torch.no_grad():
        x_neutral = core.driving_keypoints([src, src], [em.KeypointEdit(), happy])
        # Undo stitching to see the raw edit: stitching(x_s, x_d) - x_d is the MLP's delta.
        delta_stitch = lambda x_d: kp_math.stitching(core.models.stitching.stitching, src.x_s, x_d) - x_d  # noqa: E731
        raw_happy = src.x_s + torch.from_numpy(happy.expression_delta())[None] * src.scale.reshape(1, 1, 1)
        # happy's cheek raiser narrows the eyes a little: the eye retargeting net adds its delta
        assert happy.eye_target is not None and happy.eye_target < SRC_EYE
        ratio = torch.tensor([[SRC_EYE, SRC_EYE, happy.eye_target]])
        raw_happy = raw_happy + kp_math.retarget(core.models.stitching.eye, src.x_s, ratio)
        assert torch.allclose(x_neutral[0:1], src.x_s + delta_stitch(src.x_s), atol=1e-6)
        assert torch.allclose(x_neutral[1:2], raw_happy + delta_stitch(raw_happy), atol=1e-6)
        # A pose change rotates the canonical keypoints about the source pose.
        turned = core.driving_keypoints([src], [em.KeypointEdit(d_yaw=10.0)])
        assert not torch.allclose(turned, x_neutral[0:1], atol=1e-3)

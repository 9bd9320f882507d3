"""Baseline "neutral" (absolute expressions) on the liveportrait engine.

The photo's own expression is replaced, not added to: the driving expression is NEUTRAL_EXP
plus the emotion's keypoint delta on the expression components, and the eye/lip retargeting
goes from the neutral reference to absolute open-ratio targets. The mapping tests need no
weights; the pipeline tests run the seed-1 synthetic networks (motion extractor, appearance
extractor, stitching and retargeting MLPs; no warping or decoding).
"""
from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import pytest
import torch

from engine.facs import FaceActivation, activation
from engine.liveportrait import emotions as em
from engine.liveportrait import kp_math
from engine.motion import EMOTIONS, Motion
from lp_fixtures import REF_DIR, needs_reference, seed1_checkpoints

MASK = em.expression_mask()


def direction(slider: str, value: float = 1.0) -> np.ndarray:
    """The editor's (21,3) keypoint direction for one slider at one value."""
    d = np.zeros((21, 3))
    for kp, axis, coef in em.SLIDER_COEFFICIENTS[slider]:
        d[kp, axis] += value * coef
    return d


SMILE = direction("smile")
BROW_UP = direction("eyebrow_up")  # kp1 y +, kp2 y -
FROWN = direction("eyebrow_down", -1.0)  # kp1/kp2 x towards each other, and down


def absolute(name: str, intensity: float = 1.0) -> em.KeypointEdit:
    return em.edit_for_motion(Motion.emotion(name, intensity), 0.3, 0.05)


# --- the mapping (no weights) ---

def test_neutral_is_the_canonical_face_whatever_the_photo() -> None:
    # Two photos, one with wide eyes and an open mouth, one with narrow eyes and closed lips.
    a = em.edit_for_motion(Motion(), 0.55, 0.45)
    b = em.edit_for_motion(Motion(), 0.15, 0.0)
    assert a == b and a.absolute
    assert not a.expression_delta().any()
    assert a.eye_target == em.EYE_RATIO_NEUTRAL and a.lip_target == em.LIP_RATIO_CLOSED == 0.0


def test_photo_baseline_is_the_previous_mapping() -> None:
    for name in EMOTIONS:
        m = Motion.emotion(name, 0.8, baseline="photo").with_controls(gaze_x=0.3, eye_left=-0.5)
        assert em.edit_for_motion(m, 0.3, 0.05) == em.edit_from_activation(activation(m), 0.3, 0.05)
    assert em.edit_for_motion(Motion(baseline="photo"), 0.3, 0.05) == em.KeypointEdit()
    with pytest.raises(ValueError, match="baseline"):
        em.edit_for_motion(Motion(baseline="sideways"), 0.3, 0.05)


def test_happy_pulls_the_lip_corners_up() -> None:
    e = absolute("happy")
    d = e.expression_delta()
    assert float((d * SMILE).sum()) > 0
    assert d[14, 1] < 0 and d[20, 1] < 0  # the editor's biggest smile movers go up (y is down)
    assert e.eye_target < em.EYE_RATIO_NEUTRAL  # AU6 cheek raiser narrows the eyes
    assert e.lip_target > em.LIP_RATIO_CLOSED  # AU25 at full intensity parts the lips
    assert absolute("happy", 0.4).lip_target == em.LIP_RATIO_CLOSED  # closed at low intensity


def test_sad_raises_the_inner_brows_draws_them_together_and_turns_the_corners_down() -> None:
    e = absolute("sad")
    d = e.expression_delta()
    assert float((d * SMILE).sum()) < 0 and d[14, 1] > 0  # corners down (AU15)
    # AU1 and AU4 both show: raised along the editor's "up" direction and pulled together.
    assert d[1, 1] > 0 and d[2, 1] < 0
    assert d[1, 0] > 0 and d[2, 0] < 0
    assert e.brow_raise > 0 and e.brow_lower > 0 and e.eyebrow == 0
    assert e.lip_target == em.LIP_RATIO_CLOSED
    assert e.eye_target < em.EYE_RATIO_NEUTRAL  # AU43 drooping lids


def test_surprised_raises_the_brows_widens_the_eyes_and_opens_the_mouth() -> None:
    e = absolute("surprised")
    d = e.expression_delta()
    # On the brow keypoints: a pure raise, no frown (the mouth's AU15/AU23 move other keypoints).
    brows = sorted({kp for s in ("eyebrow_up", "eyebrow_down") for kp, _, _ in em.SLIDER_COEFFICIENTS[s]})
    np.testing.assert_allclose(d[brows], (e.brow_raise * BROW_UP)[brows], atol=1e-9)
    assert e.brow_raise > 10 and e.brow_lower == 0
    assert e.eye_target == pytest.approx(em.EYE_RATIO_WIDE)  # AU5 1.2 saturates the widening
    assert e.lip_target > 0.4


def test_angry_lowers_and_draws_the_brows_and_presses_the_lips() -> None:
    e = absolute("angry")
    d = e.expression_delta()
    assert e.brow_lower > 0 and e.brow_raise == 0
    assert float((d * FROWN).sum()) > 0
    assert d[1, 0] > 0 and d[2, 0] < 0 and d[1, 1] < 0 and d[2, 1] > 0
    assert e.lip_one > 0  # AU23 lip tightener
    assert e.eye_target < em.EYE_RATIO_NEUTRAL  # AU7 tightened lids outweigh AU5


def test_disgusted_raises_the_upper_lip_and_lowers_the_brows() -> None:
    e = absolute("disgusted")
    assert e.lip_two > 0 and e.brow_lower > 0  # AU10 grin, AU9 pulls the brows down
    assert float((e.expression_delta() * direction("lip_two")).sum()) > 0
    assert e.eye_target < em.EYE_RATIO_NEUTRAL  # AU9 squint


def test_fearful_raises_and_draws_the_brows_widens_the_eyes_and_stretches_the_lips() -> None:
    e = absolute("fearful")
    d = e.expression_delta()
    assert d[1, 1] > 0 and d[2, 1] < 0 and d[1, 0] > 0 and d[2, 0] < 0
    assert e.eye_target > em.EYE_RATIO_NEUTRAL and e.lip_target > 0 and e.lip_two > 0


def _act(aus: dict[int, float]) -> FaceActivation:
    return replace(activation(Motion()), action_units=aus)


def test_au_table_ignores_unknown_units_and_maps_chin_raiser_and_lip_pressor() -> None:
    base = em.absolute_edit_from_activation(_act({12: 1.0}))
    assert em.absolute_edit_from_activation(_act({12: 1.0, 99: 1.0, 14: 0.5})) == base
    chin = em.absolute_edit_from_activation(_act({17: 0.5}))
    assert chin.lip_three < 0 and chin.expression_delta()[19, 1] < 0  # lower lip pushed up
    press = em.absolute_edit_from_activation(_act({24: 1.0}))
    assert press.lip_one > 0 and press.lip_target == em.LIP_RATIO_CLOSED
    huge = em.absolute_edit_from_activation(_act({1: 9.0, 4: 9.0, 12: 9.0, 23: 9.0, 10: 9.0, 16: 9.0}))
    for name, (lo, hi) in em.SLIDER_RANGES.items():
        assert lo <= getattr(huge, name) <= hi


def test_blink_closes_and_controls_reach_the_absolute_targets() -> None:
    from engine.motion import IdleState

    blink = em.edit_for_motion(Motion(idle=IdleState(blink=1.0)), 0.3, 0.05)
    assert blink.eye_target == pytest.approx(0.0)
    wide = em.edit_for_motion(Motion().with_controls(eyes_open=1.0, mouth_open=1.0), 0.3, 0.05)
    assert wide.eye_target == pytest.approx(em.EYE_RATIO_WIDE)
    assert wide.lip_target == pytest.approx(em.LIP_RATIO_OPEN)
    turned = em.edit_for_motion(Motion().with_controls(yaw=10.0, gaze_x=0.5), 0.3, 0.05)
    assert turned.d_yaw == 10.0 and turned.eyeball_x == pytest.approx(0.5 * em.EYEBALL_X_FULL)


def test_expression_mask_is_the_official_absolute_component_set() -> None:
    assert MASK.sum() == 13 * 3 + 1 + 1 + 1 + 1 + 2
    assert MASK[14].all() and MASK[1].all() and not MASK[0].any() and not MASK[7].any()
    assert MASK[3].tolist() == [False, True, False] and MASK[9].tolist() == [False, True, True]


# --- the pipeline on the seed-1 synthetic networks ---

class _Recorder(torch.nn.Module):
    """Wraps a retargeting MLP and keeps every ratio input it sees (the last columns)."""

    def __init__(self, inner: torch.nn.Module, n_ratio: int) -> None:
        super().__init__()
        self.inner, self.n_ratio, self.seen = inner, n_ratio, []

    def forward(self, feat: torch.Tensor) -> torch.Tensor:
        self.seen.append(feat[:, -self.n_ratio:].clone())
        return self.inner(feat)


@pytest.fixture(scope="module")
def core() -> Any:
    if not (REF_DIR / "make_checkpoints.py").is_file():
        pytest.skip(f"LivePortrait reference data not found in {REF_DIR}")
    from engine.liveportrait.loader import load_models
    from engine.liveportrait.pipeline import LivePortraitCore, Precision

    return LivePortraitCore(load_models(seed1_checkpoints(), "cpu"), Precision(torch.device("cpu")))


@pytest.fixture(scope="module")
def sources(core: Any) -> list[Any]:
    with np.load(REF_DIR / "cases.npz") as c:
        crops = [c["img_u8_0"], c["img_u8_1"]]
    # One photo with open lips and wide eyes, one with closed lips and narrow eyes.
    out = [core.prepare_crop(crops[0], (0.55, 0.5), 0.45), core.prepare_crop(crops[1], (0.15, 0.2), 0.0)]
    assert (out[0].exp - out[1].exp).abs().max() > 1e-3  # the two faces' expressions differ
    return out


@pytest.fixture()
def recorded(core: Any) -> Any:
    net = core.models.stitching
    eye, lip = _Recorder(net.eye, 3), _Recorder(net.lip, 2)
    net.eye, net.lip = eye, lip
    yield eye, lip
    net.eye, net.lip = eye.inner, lip.inner


def _neutral_reference(src: Any) -> torch.Tensor:
    exp = torch.where(torch.from_numpy(MASK)[None], torch.from_numpy(em.NEUTRAL_EXP)[None], src.exp)
    rot = kp_math.rotation_matrix(src.angles[:, 0], src.angles[:, 1], src.angles[:, 2])
    return kp_math.compose_keypoints(src.kp_canonical, rot, exp, src.scale, src.t)


pipeline = needs_reference


@pipeline
@torch.no_grad()
def test_driving_expression_does_not_depend_on_the_photo(core: Any, sources: list[Any]) -> None:
    for motion in [Motion(), Motion.emotion("happy", 0.7), Motion.emotion("sad"), Motion.emotion("fearful")]:
        edit = em.edit_for_motion(motion, 0.3, 0.05)
        exps = [core.driving_expression([s], [edit])[0].numpy() for s in sources]
        np.testing.assert_array_equal(exps[0][MASK], exps[1][MASK])
        want = em.NEUTRAL_EXP + edit.expression_delta()
        np.testing.assert_allclose(exps[0][MASK], want[MASK], atol=1e-7)
        for exp, src in zip(exps, sources):  # face-shape components stay the photo's own
            np.testing.assert_allclose(exp[~MASK], (src.exp[0].numpy() + edit.expression_delta())[~MASK],
                                       atol=1e-7)


@pipeline
@torch.no_grad()
def test_neutral_drives_the_neutral_reference_without_retargeting(core: Any, sources: list[Any],
                                                                  recorded: Any) -> None:
    edit = em.edit_for_motion(Motion(), 0.3, 0.05)
    for src in sources:
        np.testing.assert_array_equal(core.driving_expression([src], [edit])[0].numpy()[MASK],
                                      em.NEUTRAL_EXP[MASK])
        x_d = core.edited_keypoints([src], [edit])
        assert torch.allclose(x_d, _neutral_reference(src), atol=1e-6)
        assert not torch.allclose(x_d, src.x_s, atol=1e-3)  # the photo's own expression is gone
        full = core.driving_keypoints([src], [edit])
        assert torch.allclose(full, kp_math.stitching(core.models.stitching.stitching, src.x_s, x_d), atol=1e-6)
    eye, lip = recorded
    assert eye.seen == [] and lip.seen == []  # targets equal the reference: nothing to move


@pipeline
@torch.no_grad()
def test_photo_baseline_keeps_the_photo(core: Any, sources: list[Any], recorded: Any) -> None:
    photo = em.edit_for_motion(Motion(baseline="photo"), 0.3, 0.05)
    for src in sources:
        assert torch.equal(core.driving_expression([src], [photo]), src.exp)
        assert torch.allclose(core.edited_keypoints([src], [photo]), src.x_s, atol=1e-6)
    # Relative targets: the photo's own ratios are the nets' starting point.
    m = Motion(baseline="photo").with_controls(mouth_open=1.0)
    core.edited_keypoints(sources, [em.edit_for_motion(m, 0.3, s.lip_ratio) for s in sources])
    lip_in = recorded[1].seen[-1]
    assert lip_in[:, 0].tolist() == pytest.approx([0.45, 0.0])


@pipeline
@torch.no_grad()
def test_retargeting_goes_to_absolute_targets(core: Any, sources: list[Any], recorded: Any) -> None:
    eye, lip = recorded
    surprised = em.edit_for_motion(Motion.emotion("surprised"), 0.3, 0.05)
    x_d = core.edited_keypoints(sources, [surprised, surprised])
    n, wide, open_ = em.EYE_RATIO_NEUTRAL, surprised.eye_target, surprised.lip_target
    # Both photos: the same inputs, from the neutral reference, whatever their measured ratios.
    close = lambda got, row: np.testing.assert_allclose(got.numpy(), [row] * 2, atol=1e-6)  # noqa: E731
    close(eye.seen[0], [n, n, wide])
    close(eye.seen[1], [n, n, n])
    close(lip.seen[0], [0.0, open_])
    close(lip.seen[1], [0.0, 0.0])
    # x_d = neutral-reference pose and shape with the target expression, plus the nets' moves
    # from the reference ratios to the targets.
    for i, src in enumerate(sources):
        x_ref = _neutral_reference(src)
        exp_d = core.driving_expression([src], [surprised])
        want = kp_math.compose_keypoints(src.kp_canonical, kp_math.rotation_matrix(
            src.angles[:, 0], src.angles[:, 1], src.angles[:, 2]), exp_d, src.scale, src.t)
        net = core.models.stitching
        moves = ((net.eye.inner, [n, n, wide], [n, n, n]), (net.lip.inner, [0.0, open_], [0.0, 0.0]))
        for module, ratio, ref in moves:
            want = want + kp_math.retarget(module, x_ref, torch.tensor([ratio])) \
                - kp_math.retarget(module, x_ref, torch.tensor([ref]))
        assert torch.allclose(x_d[i:i + 1], want, atol=1e-5)


@pipeline
@torch.no_grad()
def test_emotions_move_the_driving_keypoints_the_facs_way(core: Any, sources: list[Any]) -> None:
    neutral = em.edit_for_motion(Motion(), 0.3, 0.05)
    for src in sources:
        base = core.driving_expression([src], [neutral])[0].numpy().astype(np.float64)
        scale = float(src.scale)

        def moved(name: str) -> np.ndarray:
            e = em.edit_for_motion(Motion.emotion(name), 0.3, 0.05)
            exp = core.driving_expression([src], [e])[0].numpy().astype(np.float64)
            rot = kp_math.rotation_matrix(src.angles[:, 0], src.angles[:, 1], src.angles[:, 2])
            x = kp_math.compose_keypoints(src.kp_canonical, rot, torch.from_numpy(exp[None]).float(),
                                          src.scale, src.t)
            x0 = kp_math.compose_keypoints(src.kp_canonical, rot, torch.from_numpy(base[None]).float(),
                                           src.scale, src.t)
            return (x - x0)[0].numpy() / scale  # keypoint motion in the camera frame

        happy, sad, surprised, angry, fearful = (moved(n) for n in
                                                 ("happy", "sad", "surprised", "angry", "fearful"))
        assert happy[14, 1] < -0.01 and happy[20, 1] < -0.005  # lip keypoints up
        assert sad[14, 1] > 0.002 and sad[1, 1] > 0 and sad[2, 1] < 0  # corners down, brows up
        assert sad[1, 0] > 0.005 and sad[2, 0] < -0.005  # ... and together
        assert surprised[1, 1] > 0.01 and surprised[2, 1] < -0.01 and abs(surprised[1, 0]) < 1e-6
        assert angry[1, 0] > 0.005 and angry[2, 0] < -0.005 and angry[1, 1] < 0 and angry[2, 1] > 0
        assert fearful[1, 1] > 0 and fearful[1, 0] > 0


@pipeline
@torch.no_grad()
def test_a_mixed_batch_keeps_each_rows_semantics(core: Any, sources: list[Any]) -> None:
    photo = em.edit_for_motion(Motion.emotion("happy", baseline="photo"), 0.3, sources[0].lip_ratio)
    absolute_ = em.edit_for_motion(Motion.emotion("surprised"), 0.3, 0.05)
    both = core.driving_keypoints(sources, [photo, absolute_])
    alone = [core.driving_keypoints([sources[0]], [photo]), core.driving_keypoints([sources[1]], [absolute_])]
    assert torch.allclose(both[0:1], alone[0], atol=1e-6)
    assert torch.allclose(both[1:2], alone[1], atol=1e-6)

"""From our FACS activation to LivePortrait keypoint controls (docs/liveportrait_emotions.md).

Two steps:

1. ``edit_for_motion`` turns action units and the non-AU degrees of freedom into the
   official portrait editor's sliders (smile, wink, eyebrow, eyeball direction, lip variations,
   relative pitch/yaw/roll) plus eye/lip open-ratio targets for the retargeting networks.
   Baseline "photo" (``edit_from_activation``): the sliders add to the photo's own expression
   and the ratio targets are relative to the photo's ratios. Baseline "neutral"
   (``absolute_edit_from_activation``): the photo's expression is replaced by
   ``NEUTRAL_EXP`` plus the sliders, and the ratio targets are absolute.
2. ``KeypointEdit.expression_delta`` turns the sliders into a (21,3) expression offset with the
   editor's published per-keypoint coefficients (``SLIDER_COEFFICIENTS``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..facs import FaceActivation, activation
from ..motion import BASELINES, Motion

NUM_KP = 21

# Per slider: (keypoint, axis, coefficient) triples; the keypoint moves by slider * coefficient.
# Axis 0 = x (image right), 1 = y (image down), 2 = z. Values are the official editor's.
SLIDER_COEFFICIENTS: dict[str, tuple[tuple[int, int, float], ...]] = {
    "smile": ((20, 1, -0.01), (14, 1, -0.02), (17, 1, 0.0065), (17, 2, 0.003),
              (13, 1, -0.00275), (16, 1, -0.00275), (3, 1, -0.0035), (7, 1, -0.0035)),
    "wink": ((11, 1, 0.001), (13, 1, -0.0003), (17, 0, 0.0003), (17, 1, 0.0003), (3, 1, -0.0003)),
    "eyebrow_up": ((1, 1, 0.001), (2, 1, -0.001)),
    "eyebrow_down": ((1, 0, -0.001), (2, 0, 0.001), (1, 1, 0.0003), (2, 1, -0.0003)),
    "eyeball_x_pos": ((11, 0, 0.0007), (15, 0, 0.001)),
    "eyeball_x_neg": ((11, 0, 0.001), (15, 0, 0.0007)),
    # The vertical gaze slider also half-closes the lids when looking down (the "blink" term).
    "eyeball_y": ((11, 1, -0.001), (15, 1, -0.001)),
    "eyeball_y_blink": ((11, 1, -0.001), (13, 1, 0.0003), (15, 1, -0.001), (16, 1, 0.0003)),
    "lip_zero": ((19, 0, 1.0),),  # pouting
    "lip_one": ((14, 1, 0.001), (3, 1, -0.0005), (7, 1, -0.0005), (17, 2, -0.0005)),  # pursing
    "lip_two": ((20, 2, -0.001), (20, 1, -0.001), (14, 1, -0.001)),  # grin
    "lip_three": ((19, 1, 0.001), (19, 2, 0.0001), (17, 1, -0.0001)),  # lip close <-> open
}

# Editor slider ranges (app.py), used to clip our values.
SLIDER_RANGES: dict[str, tuple[float, float]] = {
    "smile": (-0.3, 1.3), "wink": (0.0, 39.0), "eyebrow": (-30.0, 30.0),
    "brow_raise": (0.0, 30.0), "brow_lower": (0.0, 30.0),  # the eyebrow slider's two halves
    "eyeball_x": (-30.0, 30.0), "eyeball_y": (-63.0, 63.0), "lip_zero": (-0.09, 0.09),
    "lip_one": (-20.0, 15.0), "lip_two": (0.0, 15.0), "lip_three": (-90.0, 120.0),
}

# Our gains: slider units per unit of action unit (or per control). See the doc's table.
SMILE_PER_AU12 = 0.8
SMILE_PER_AU15 = -0.3
LIP_ONE_PER_AU23 = 8.0  # lip tightener -> pursing
LIP_ONE_PER_AU18 = 6.0  # lip pucker (speech's round viseme) -> pursing
LIP_ZERO_PER_AU18 = 0.05  # ... and pouting
LIP_TWO_PER_AU20 = 6.0  # lip stretcher -> grin
LIP_TWO_PER_AU10 = 4.0  # upper lip raiser -> grin (upper teeth)
LIP_THREE_PER_AU16 = 20.0  # lower lip depressor -> lip open
EYEBROW_PER_UNIT = 15.0  # per unit of (0.5*AU1 + 0.5*AU2 - AU4 - 0.3*AU9)
WINK_FULL = 30.0  # wink slider for one eye fully closed while the other is open
EYEBALL_X_FULL = 20.0
EYEBALL_Y_FULL = 30.0
EYE_OPEN_WIDE = 0.5  # eye-open ratio target at full widening (editor slider 0..0.8)
LIP_OPEN_FULL = 0.6  # lip-open ratio target at mouth fully open (editor slider 0..0.8)
SHIFT_Y_PER_BREATH = 0.004  # keypoint units (the volume spans [-1, 1])

# --- Baseline "neutral" (absolute expressions) ---

# The expression components that absolute driving replaces: the official pipeline's
# non-relative mode takes these from the driving expression and keeps the source's own
# values elsewhere (those carry face shape, not expression). (keypoint, axes) pairs.
EXPRESSION_COMPONENTS: tuple[tuple[int, tuple[int, ...]], ...] = (
    *((k, (0, 1, 2)) for k in (1, 2, 6, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20)),
    (3, (1,)), (4, (1,)), (5, (2,)), (8, (2,)), (9, (1, 2)),
)


def expression_mask() -> np.ndarray:
    """(21,3) bool: True where absolute driving replaces the source expression."""
    m = np.zeros((NUM_KP, 3), dtype=bool)
    for kp, axes in EXPRESSION_COMPONENTS:
        m[kp, list(axes)] = True
    return m


# The canonical neutral expression (relaxed face, lips closed, eyes normally open) that
# replaces the photo's own. Zero = the canonical keypoints alone, the identity shape the motion
# extractor factors the expression out of. A placeholder until it is measured on real weights
# (docs/liveportrait_emotions.md, checklist): only the EXPRESSION_COMPONENTS entries are used.
NEUTRAL_EXP = np.zeros((NUM_KP, 3), dtype=np.float32)

# Open ratios of NEUTRAL_EXP, in the retargeting networks' own (203-point landmark) scale. The
# networks move the neutral reference from these to the frame's absolute targets.
EYE_RATIO_NEUTRAL = 0.39  # the official pipeline's default for re-opening closed eyes
EYE_RATIO_WIDE = 0.6  # upper lids fully raised (AU5 / eyes_open = 1)
LIP_RATIO_CLOSED = 0.0  # lips together (the official lip normalisation target)
LIP_RATIO_OPEN = 0.6  # mouth fully open (max of AU25, AU26 = 1)

# Per action unit: the editor sliders it drives, in slider units per unit of activation.
# Unknown action units (ones this table does not list) are ignored. AU5/6/7/9/43 reach the
# eyes, and AU25/26 the lips, through the FaceActivation's eye closure/widening and the mouth
# target below. AU1 and AU4 use the eyebrow slider's two halves separately, so 1+4 (sad,
# fearful) keeps the inner-brow raise and the frown's pull together instead of cancelling.
AU_SLIDERS: dict[int, tuple[tuple[str, float], ...]] = {
    1: (("brow_raise", 7.5),),  # inner brow raiser
    2: (("brow_raise", 7.5),),  # outer brow raiser
    4: (("brow_lower", 15.0),),  # brow lowerer: down and together
    9: (("brow_lower", 4.5),),  # nose wrinkler pulls the brows down a little
    10: (("lip_two", 4.0),),  # upper lip raiser -> grin (upper teeth)
    12: (("smile", 0.8),),  # lip corner puller
    15: (("smile", -0.375),),  # lip corner depressor: the editor's -0.3 floor at AU15 = 0.8
    16: (("lip_three", 20.0),),  # lower lip depressor -> lip open
    17: (("lip_three", -20.0),),  # chin raiser pushes the lower lip up
    18: (("lip_zero", 0.05), ("lip_one", 6.0)),  # lip pucker (speech's round): pout + purse
    20: (("lip_two", 6.0),),  # lip stretcher -> grin
    23: (("lip_one", 8.0),),  # lip tightener -> pursing
    24: (("lip_one", 6.0),),  # lip pressor -> pursing
}


@dataclass(frozen=True)
class KeypointEdit:
    """Editor sliders plus retargeting targets for one frame. Zero everywhere = the photo."""

    smile: float = 0.0
    wink: float = 0.0
    eyebrow: float = 0.0
    eyeball_x: float = 0.0
    eyeball_y: float = 0.0
    lip_zero: float = 0.0
    lip_one: float = 0.0
    lip_two: float = 0.0
    lip_three: float = 0.0
    brow_raise: float = 0.0  # >= 0: the eyebrow slider's "up" coefficients
    brow_lower: float = 0.0  # >= 0: its "down" coefficients at slider value -brow_lower
    d_pitch: float = 0.0  # degrees added to the source pose
    d_yaw: float = 0.0
    d_roll: float = 0.0
    shift_y: float = 0.0  # head bob in keypoint units
    eye_target: float | None = None  # eye-open ratio for the eye retargeting net (None: untouched)
    lip_target: float | None = None  # lip-open ratio for the lip retargeting net (None: untouched)
    # True (baseline "neutral"): NEUTRAL_EXP replaces the source's expression components, and
    # the targets are absolute ratios reached from the neutral reference (EYE_RATIO_NEUTRAL,
    # LIP_RATIO_CLOSED). False (baseline "photo"): delta and targets are relative to the photo.
    absolute: bool = False

    def expression_delta(self) -> np.ndarray:
        """(21,3) float32 offset added to the source expression ``exp``."""
        d = np.zeros((NUM_KP, 3), dtype=np.float64)

        def add(slider: str, value: float) -> None:
            if value != 0.0:
                for kp, axis, coef in SLIDER_COEFFICIENTS[slider]:
                    d[kp, axis] += value * coef

        add("smile", self.smile)
        add("wink", self.wink)
        add("eyebrow_up" if self.eyebrow > 0 else "eyebrow_down", self.eyebrow)
        add("eyebrow_up", self.brow_raise)
        add("eyebrow_down", -self.brow_lower)
        add("eyeball_x_pos" if self.eyeball_x > 0 else "eyeball_x_neg", self.eyeball_x)
        add("eyeball_y", self.eyeball_y)
        add("eyeball_y_blink", -self.eyeball_y / 2.0)
        add("lip_zero", self.lip_zero)
        add("lip_one", self.lip_one)
        add("lip_two", self.lip_two)
        add("lip_three", self.lip_three)
        return d.astype(np.float32)


def _clip(name: str, value: float) -> float:
    lo, hi = SLIDER_RANGES[name]
    return float(min(hi, max(lo, value)))


def edit_from_activation(act: FaceActivation, source_eye_ratio: float,
                         source_lip_ratio: float) -> KeypointEdit:
    """The documented table. Source ratios are the portrait's own open ratios (as photographed)."""
    au = lambda k: float(act.action_units.get(k, 0.0))  # noqa: E731
    smile = SMILE_PER_AU12 * au(12) + SMILE_PER_AU15 * au(15)
    brows = 0.5 * au(1) + 0.5 * au(2) - au(4) - 0.3 * au(9)

    # Both eyes: the eye retargeting net takes one target ratio for the pair. The common
    # closure goes there; the difference between the eyes goes to the editor's wink slider.
    close_both = min(act.eye_close_left, act.eye_close_right)
    eye_target: float | None = None
    if close_both > 1e-6 or act.eye_widen > 1e-6:
        open_ratio = source_eye_ratio * (1.0 - close_both)
        open_ratio += act.eye_widen * max(0.0, EYE_OPEN_WIDE - source_eye_ratio)
        eye_target = float(open_ratio)
    wink = WINK_FULL * max(0.0, act.eye_close_right - act.eye_close_left)

    mouth = min(1.0, max(au(25), au(26), au(27)))  # AU27 mouth stretch: the jaw further down
    lip_target: float | None = None
    if mouth > 1e-6:
        lip_target = float(source_lip_ratio + mouth * max(0.0, LIP_OPEN_FULL - source_lip_ratio))

    return KeypointEdit(
        smile=_clip("smile", smile),
        wink=_clip("wink", wink),
        eyebrow=_clip("eyebrow", EYEBROW_PER_UNIT * brows),
        eyeball_x=_clip("eyeball_x", EYEBALL_X_FULL * act.gaze_x),
        eyeball_y=_clip("eyeball_y", -EYEBALL_Y_FULL * act.gaze_y),  # slider + looks up
        lip_zero=_clip("lip_zero", LIP_ZERO_PER_AU18 * au(18)),
        lip_one=_clip("lip_one", LIP_ONE_PER_AU23 * au(23) + LIP_ONE_PER_AU18 * au(18)),
        lip_two=_clip("lip_two", LIP_TWO_PER_AU20 * au(20) + LIP_TWO_PER_AU10 * au(10)),
        lip_three=_clip("lip_three", LIP_THREE_PER_AU16 * au(16)),
        d_pitch=act.pitch, d_yaw=act.yaw, d_roll=act.roll,
        shift_y=SHIFT_Y_PER_BREATH * act.breath,
        eye_target=eye_target, lip_target=lip_target,
    )


def absolute_edit_from_activation(act: FaceActivation) -> KeypointEdit:
    """Baseline "neutral": the expression the activation describes, whatever the photo shows.

    Sliders come from ``AU_SLIDERS`` (added to ``NEUTRAL_EXP``); eye and lip targets are
    absolute open ratios, always set: with nothing active the eyes go to EYE_RATIO_NEUTRAL and
    the lips to LIP_RATIO_CLOSED, even when the photo's mouth is open.
    """
    sliders: dict[str, float] = {}
    for au, value in act.action_units.items():
        for slider, gain in AU_SLIDERS.get(int(au), ()):
            sliders[slider] = sliders.get(slider, 0.0) + gain * float(value)

    close_both = min(act.eye_close_left, act.eye_close_right)
    eye_target = EYE_RATIO_NEUTRAL * (1.0 - close_both) + act.eye_widen * (EYE_RATIO_WIDE - EYE_RATIO_NEUTRAL)
    au = lambda k: float(act.action_units.get(k, 0.0))  # noqa: E731
    mouth = min(1.0, max(au(25), au(26), au(27)))
    lip_target = LIP_RATIO_CLOSED + mouth * (LIP_RATIO_OPEN - LIP_RATIO_CLOSED)

    clipped = {name: _clip(name, sliders.get(name, 0.0))
              for name in ("smile", "brow_raise", "brow_lower", "lip_zero", "lip_one", "lip_two", "lip_three")}
    return KeypointEdit(
        **clipped,
        wink=_clip("wink", WINK_FULL * max(0.0, act.eye_close_right - act.eye_close_left)),
        eyeball_x=_clip("eyeball_x", EYEBALL_X_FULL * act.gaze_x),
        eyeball_y=_clip("eyeball_y", -EYEBALL_Y_FULL * act.gaze_y),
        d_pitch=act.pitch, d_yaw=act.yaw, d_roll=act.roll,
        shift_y=SHIFT_Y_PER_BREATH * act.breath,
        eye_target=float(eye_target), lip_target=float(lip_target), absolute=True,
    )


def edit_for_motion(motion: Motion, source_eye_ratio: float, source_lip_ratio: float) -> KeypointEdit:
    """The frame's edit under the motion's baseline ("neutral": absolute, "photo": relative)."""
    if motion.baseline not in BASELINES:
        raise ValueError(f"unknown baseline {motion.baseline!r}; valid: {', '.join(BASELINES)}")
    act = activation(motion)
    if motion.baseline == "photo":
        return edit_from_activation(act, source_eye_ratio, source_lip_ratio)
    return absolute_edit_from_activation(act)

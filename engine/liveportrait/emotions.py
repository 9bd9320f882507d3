"""From our FACS activation to LivePortrait keypoint controls (docs/liveportrait_emotions.md).

Two steps:

1. ``edit_from_activation`` turns action units and the non-AU degrees of freedom into the
   official portrait editor's sliders (smile, wink, eyebrow, eyeball direction, lip variations,
   relative pitch/yaw/roll) plus eye/lip open-ratio targets for the retargeting networks.
2. ``KeypointEdit.expression_delta`` turns the sliders into a (21,3) expression offset with the
   editor's published per-keypoint coefficients (``SLIDER_COEFFICIENTS``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..facs import FaceActivation

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
    "eyeball_x": (-30.0, 30.0), "eyeball_y": (-63.0, 63.0), "lip_zero": (-0.09, 0.09),
    "lip_one": (-20.0, 15.0), "lip_two": (0.0, 15.0), "lip_three": (-90.0, 120.0),
}

# Our gains: slider units per unit of action unit (or per control). See the doc's table.
SMILE_PER_AU12 = 0.8
SMILE_PER_AU15 = -0.3
LIP_ONE_PER_AU23 = 8.0  # lip tightener -> pursing
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
    d_pitch: float = 0.0  # degrees added to the source pose
    d_yaw: float = 0.0
    d_roll: float = 0.0
    shift_y: float = 0.0  # head bob in keypoint units
    eye_target: float | None = None  # eye-open ratio for the eye retargeting net (None: untouched)
    lip_target: float | None = None  # lip-open ratio for the lip retargeting net (None: untouched)

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

    mouth = min(1.0, max(au(25), au(26)))
    lip_target: float | None = None
    if mouth > 1e-6:
        lip_target = float(source_lip_ratio + mouth * max(0.0, LIP_OPEN_FULL - source_lip_ratio))

    return KeypointEdit(
        smile=_clip("smile", smile),
        wink=_clip("wink", wink),
        eyebrow=_clip("eyebrow", EYEBROW_PER_UNIT * brows),
        eyeball_x=_clip("eyeball_x", EYEBALL_X_FULL * act.gaze_x),
        eyeball_y=_clip("eyeball_y", -EYEBALL_Y_FULL * act.gaze_y),  # slider + looks up
        lip_one=_clip("lip_one", LIP_ONE_PER_AU23 * au(23)),
        lip_two=_clip("lip_two", LIP_TWO_PER_AU20 * au(20) + LIP_TWO_PER_AU10 * au(10)),
        lip_three=_clip("lip_three", LIP_THREE_PER_AU16 * au(16)),
        d_pitch=act.pitch, d_yaw=act.yaw, d_roll=act.roll,
        shift_y=SHIFT_Y_PER_BREATH * act.breath,
        eye_target=eye_target, lip_target=lip_target,
    )

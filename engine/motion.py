"""Motion: the complete, engine-independent description of one rendered frame.

A Motion is what a client controls (emotion weights, low-level controls) plus what the
idle animator adds (blinks, sway). Every field is 0 at rest, so blending, easing and
adding idle motion are plain arithmetic on the same numbers.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields, replace
from typing import Mapping

from .speech.visemes import MouthPose

EMOTIONS: tuple[str, ...] = ("neutral", "happy", "sad", "surprised", "angry", "disgusted", "fearful")

# What "no emotion" means. "neutral" (the default): expressions are absolute, the engine first
# removes the photo's own expression (a smile in the photo is gone at emotion=neutral).
# "photo": emotions are added on top of the face as photographed (the seed's behaviour).
BASELINES: tuple[str, ...] = ("neutral", "photo")


@dataclass(frozen=True)
class ControlRange:
    low: float
    high: float
    unit: str
    meaning: str


# One table for validation (streamer), documentation (protocol.md) and engines.
# Eye "left"/"right" are the portrait's own eyes (its left eye is on the image's right).
CONTROL_RANGES: dict[str, ControlRange] = {
    "smile": ControlRange(-1.0, 1.0, "", "lip corners up (+) or down (-)"),
    "mouth_open": ControlRange(0.0, 1.0, "", "jaw drop / lip separation"),
    "eyes_open": ControlRange(-1.0, 1.0, "", "both eyes: -1 closed, 0 as in the photo, +1 wide"),
    "eye_left": ControlRange(-1.0, 1.0, "", "extra openness of the portrait's left eye (wink)"),
    "eye_right": ControlRange(-1.0, 1.0, "", "extra openness of the portrait's right eye (wink)"),
    "brows": ControlRange(-1.0, 1.0, "", "brows raised (+) or lowered (-)"),
    "gaze_x": ControlRange(-1.0, 1.0, "", "gaze towards image right (+) or left (-)"),
    "gaze_y": ControlRange(-1.0, 1.0, "", "gaze down (+) or up (-)"),
    "yaw": ControlRange(-20.0, 20.0, "deg", "head turn, positive towards image right"),
    "pitch": ControlRange(-20.0, 20.0, "deg", "head nod, positive looks down"),
    "roll": ControlRange(-20.0, 20.0, "deg", "head tilt, positive clockwise in the image"),
}


@dataclass(frozen=True)
class Controls:
    """Low-level controls; 0 everywhere is the face as photographed."""

    smile: float = 0.0
    mouth_open: float = 0.0
    eyes_open: float = 0.0
    eye_left: float = 0.0
    eye_right: float = 0.0
    brows: float = 0.0
    gaze_x: float = 0.0
    gaze_y: float = 0.0
    yaw: float = 0.0
    pitch: float = 0.0
    roll: float = 0.0

    def clamped(self) -> "Controls":
        values = {}
        for f in fields(self):
            r = CONTROL_RANGES[f.name]
            values[f.name] = min(r.high, max(r.low, float(getattr(self, f.name))))
        return Controls(**values)

    def as_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in fields(self)}


def _zero_weights() -> dict[str, float]:
    return {e: 0.0 for e in EMOTIONS}


@dataclass(frozen=True)
class IdleState:
    """What the idle animator adds on top of the client's target."""

    blink: float = 0.0  # 0 open .. 1 closed, both eyes
    yaw: float = 0.0  # degrees of sway
    pitch: float = 0.0
    roll: float = 0.0
    breath: float = 0.0  # -1..1, a tiny vertical bob


@dataclass(frozen=True)
class Motion:
    """Emotion weights (each 0..1, blendable) + low-level controls + idle motion.

    ``baseline`` is one of BASELINES: what the face looks like with every weight at 0.
    """

    emotions: Mapping[str, float] = field(default_factory=_zero_weights)
    controls: Controls = field(default_factory=Controls)
    idle: IdleState = field(default_factory=IdleState)
    baseline: str = "neutral"
    # The speaking mouth (engine/speech/visemes.py); None when the avatar is not speaking.
    mouth: MouthPose | None = None

    @staticmethod
    def emotion(name: str, intensity: float = 1.0, baseline: str = "neutral") -> "Motion":
        if name not in EMOTIONS:
            raise ValueError(f"unknown emotion {name!r}; valid: {', '.join(EMOTIONS)}")
        if baseline not in BASELINES:
            raise ValueError(f"unknown baseline {baseline!r}; valid: {', '.join(BASELINES)}")
        weights = _zero_weights()
        if name != "neutral":
            weights[name] = float(intensity)
        return Motion(emotions=weights, baseline=baseline)

    def with_controls(self, **changes: float) -> "Motion":
        return replace(self, controls=replace(self.controls, **changes))

    def is_neutral(self) -> bool:
        return all(abs(v) < 1e-6 for v in self.emotions.values()) and all(
            abs(v) < 1e-6 for v in self.controls.as_dict().values()
        ) and self.idle == IdleState() and self.mouth is None


def validate_unit(name: str, value: object, low: float = 0.0, high: float = 1.0) -> float:
    """Parse a finite float in [low, high]; raise ValueError with a user-facing message."""
    try:
        x = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}") from None
    if isinstance(value, bool) or not math.isfinite(x) or x < low or x > high:
        raise ValueError(f"{name} must be a number between {low:g} and {high:g}")
    return x

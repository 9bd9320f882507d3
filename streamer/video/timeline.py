"""Per-frame motions of a rendered clip: emotion timeline, easing, idle blinks, mouth poses.

Emotion timeline (JSON, docs/protocol.md): a list of keyframes
    [{"t_s": 0, "emotion": "neutral"}, {"t_s": 1.5, "emotion": "happy", "intensity": 0.8}, ...]
sorted by t_s; between keyframes the weights ease (smoothstep) from one to the next over
``transition_s`` (default 0.4 s) after each keyframe. Without a timeline, the clip eases from
neutral into ``emotion`` at ``intensity`` over its first 0.6 s.
"""
from __future__ import annotations

from streamer import strict_json
import random
from dataclasses import dataclass

from engine.motion import EMOTIONS, Motion
from engine.speech.visemes import MouthPose
from streamer.sessions.idle import IdleAnimator

EASE_IN_S = 0.6
MAX_KEYFRAMES = 256


@dataclass(frozen=True)
class Keyframe:
    t_s: float
    emotion: str
    intensity: float
    transition_s: float


def parse_timeline(text: str) -> list[Keyframe]:
    """ValueError with a client-facing message on a bad timeline."""
    try:
        raw = strict_json.loads(text)
    except ValueError:  # bad JSON, or a NaN/huge number
        raise ValueError("emotion_timeline must be JSON") from None
    if not isinstance(raw, list) or not raw or len(raw) > MAX_KEYFRAMES:
        raise ValueError(f"emotion_timeline must be a list of 1..{MAX_KEYFRAMES} keyframes")
    out = []
    for i, k in enumerate(raw):
        if not isinstance(k, dict):
            raise ValueError(f"emotion_timeline[{i}] must be an object")
        emotion = k.get("emotion")
        if emotion not in EMOTIONS:
            raise ValueError(f"emotion_timeline[{i}].emotion must be one of {', '.join(EMOTIONS)}")
        vals = []
        for name, default, hi in (("t_s", None, 3600.0), ("intensity", 0.7, 1.0), ("transition_s", 0.4, 10.0)):
            v = k.get(name, default)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0.0 <= float(v) <= hi:
                raise ValueError(f"emotion_timeline[{i}].{name} must be a number in 0..{hi:g}")
            vals.append(float(v))
        out.append(Keyframe(vals[0], emotion, vals[1], vals[2]))
    if any(b.t_s < a.t_s for a, b in zip(out, out[1:])):
        raise ValueError("emotion_timeline keyframes must be sorted by t_s")
    return out


def _weights(k: Keyframe) -> dict[str, float]:
    w = {e: 0.0 for e in EMOTIONS}
    if k.emotion != "neutral":
        w[k.emotion] = k.intensity
    return w


def _smoothstep(x: float) -> float:
    x = min(1.0, max(0.0, x))
    return x * x * (3 - 2 * x)


def default_timeline(emotion: str, intensity: float) -> list[Keyframe]:
    return [Keyframe(0.0, "neutral", 0.0, 0.0), Keyframe(0.0, emotion, intensity, EASE_IN_S)]


def emotion_weights(timeline: list[Keyframe], t: float) -> dict[str, float]:
    cur = {e: 0.0 for e in EMOTIONS}
    for k in timeline:
        if k.t_s > t:
            break
        a = _smoothstep((t - k.t_s) / k.transition_s) if k.transition_s > 0 else 1.0
        target = _weights(k)
        cur = {e: (1 - a) * cur[e] + a * target[e] for e in EMOTIONS}
    return cur


@dataclass
class MotionTimeline:
    timeline: list[Keyframe]
    fps: float
    baseline: str = "neutral"
    seed: int = 0

    def __post_init__(self) -> None:
        self._idle = IdleAnimator(rng=random.Random(self.seed))

    def motion(self, k: int, mouth: MouthPose | None) -> Motion:
        """Frame k's motion; call with increasing k (the idle animator is stateful)."""
        t = k / self.fps
        return Motion(emotions=emotion_weights(self.timeline, t), idle=self._idle.state(t),
                      baseline=self.baseline, mouth=mouth)

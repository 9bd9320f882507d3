"""A session's motion: the current values ease toward the client's target over transition_ms."""
from __future__ import annotations

from dataclasses import dataclass, field

from engine.motion import CONTROL_RANGES, EMOTIONS, Controls, IdleState, Motion


def _zeros(names) -> dict[str, float]:
    return {n: 0.0 for n in names}


def _smoothstep(x: float) -> float:
    # Eases in and out, so a slider drag never starts or stops with a jolt.
    return x * x * (3.0 - 2.0 * x)


@dataclass
class MotionState:
    """Emotion weights and controls, each easing from where it was to the newest target."""

    current_emotions: dict[str, float] = field(default_factory=lambda: _zeros(EMOTIONS))
    current_controls: dict[str, float] = field(default_factory=lambda: _zeros(CONTROL_RANGES))
    target_emotions: dict[str, float] = field(default_factory=lambda: _zeros(EMOTIONS))
    target_controls: dict[str, float] = field(default_factory=lambda: _zeros(CONTROL_RANGES))
    _start_emotions: dict[str, float] = field(default_factory=lambda: _zeros(EMOTIONS))
    _start_controls: dict[str, float] = field(default_factory=lambda: _zeros(CONTROL_RANGES))
    _t0: float = 0.0
    _duration_s: float = 0.0
    transition_ms: int = 0
    # engine.motion.BASELINES: fixed per session ("neutral": absolute expressions).
    baseline: str = "neutral"

    def set_target(self, now: float, emotions: dict[str, float] | None,
                   controls: dict[str, float], transition_ms: int) -> None:
        """New target (the newest wins); the transition restarts from the current values."""
        self.advance(now)
        self._start_emotions = dict(self.current_emotions)
        self._start_controls = dict(self.current_controls)
        if emotions is not None:
            self.target_emotions = {e: float(emotions.get(e, 0.0)) for e in EMOTIONS}
        for k, v in controls.items():
            self.target_controls[k] = float(v)
        self._t0 = now
        self._duration_s = max(0.0, transition_ms / 1000.0)
        self.transition_ms = int(transition_ms)
        if self._duration_s == 0.0:
            self.advance(now)

    def advance(self, now: float) -> None:
        if self._duration_s <= 0.0:
            a = 1.0
        else:
            a = _smoothstep(min(1.0, max(0.0, (now - self._t0) / self._duration_s)))
        for e in EMOTIONS:
            s = self._start_emotions[e]
            self.current_emotions[e] = s + (self.target_emotions[e] - s) * a
        for k in CONTROL_RANGES:
            s = self._start_controls[k]
            self.current_controls[k] = s + (self.target_controls[k] - s) * a

    def motion(self, idle: IdleState) -> Motion:
        return Motion(emotions=dict(self.current_emotions),
                      controls=Controls(**self.current_controls), idle=idle,
                      baseline=self.baseline)

    def current_dict(self) -> dict:
        return {"emotions": dict(self.current_emotions), "controls": dict(self.current_controls)}

    def target_dict(self) -> dict:
        return {"emotions": dict(self.target_emotions), "controls": dict(self.target_controls)}

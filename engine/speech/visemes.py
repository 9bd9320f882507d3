"""The viseme vocabulary shared by the analysers, both engines and the streamer.

A mouth pose is a weight per viseme, each 0..1, summing to at most 1; what is left over is
the emotion's own mouth (a talking face keeps its smile between syllables). ``None`` in a
Motion means "not speaking": the engines render exactly what they rendered before speech
existed.
"""
from __future__ import annotations

from dataclasses import dataclass

# closed: m/b/p (lips pressed), open: a, round: o/u, spread: e/i, teeth_lip: f/v.
VISEMES: tuple[str, ...] = ("closed", "open", "round", "spread", "teeth_lip")


@dataclass(frozen=True)
class MouthPose:
    """One frame's viseme weights, in VISEMES order."""

    weights: tuple[float, ...] = (0.0,) * len(VISEMES)

    def __post_init__(self) -> None:
        if len(self.weights) != len(VISEMES):
            raise ValueError(f"a mouth pose has {len(VISEMES)} weights, got {len(self.weights)}")

    @staticmethod
    def of(**named: float) -> "MouthPose":
        unknown = set(named) - set(VISEMES)
        if unknown:
            raise ValueError(f"unknown viseme(s) {sorted(unknown)}; valid: {', '.join(VISEMES)}")
        return MouthPose(tuple(float(named.get(v, 0.0)) for v in VISEMES))

    def weight(self, viseme: str) -> float:
        return self.weights[VISEMES.index(viseme)]

    def total(self) -> float:
        return float(sum(self.weights))

    def blend(self, other: "MouthPose", t: float) -> "MouthPose":
        """(1 - t) * self + t * other: smooth transitions between frames."""
        return MouthPose(tuple((1.0 - t) * a + t * b for a, b in zip(self.weights, other.weights)))

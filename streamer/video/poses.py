"""Mouth poses for a clip, delivered chunk by chunk so that analysis overlaps rendering.

``take(n)`` is blocking (the handler runs it in a thread while the engine renders the previous
chunk); calls must not overlap.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.speech.analysis import VisemeAnalyser
from engine.speech.visemes import MouthPose

_FEED_S = 0.1  # audio per feed() call


@dataclass
class PoseSource:
    """Poses from audio (streaming analyser), from a precomputed list, or none (None per frame)."""

    pcm: np.ndarray | None = None
    rate: int = 48000
    fps: float = 25.0
    precomputed: list[MouthPose] | None = None
    _analyser: VisemeAnalyser | None = field(init=False, default=None)
    _fed: int = field(init=False, default=0)
    _given: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        if self.precomputed is None and self.pcm is not None:
            self._analyser = VisemeAnalyser(self.rate, self.fps)

    def take(self, n: int) -> list[MouthPose | None]:
        if self.precomputed is not None:
            out: list[MouthPose | None] = list(self.precomputed[self._given:self._given + n])
            out += [MouthPose()] * (n - len(out))
        elif self._analyser is None:
            out = [None] * n
        else:
            an, step = self._analyser, max(1, int(_FEED_S * self.rate))
            while an.poses_ready() < n and self.pcm is not None and self._fed < len(self.pcm):
                an.feed(self.pcm[self._fed:self._fed + step])
                self._fed += step
            if an.poses_ready() < n and self.pcm is not None and self._fed >= len(self.pcm):
                an.finish()
            out = [an.next_pose() for _ in range(min(n, an.poses_ready()))]
            out += [MouthPose()] * (n - len(out))
        self._given += n
        return out

"""Smooth per-hop viseme targets into mouth poses: attack/release plus anticipation.

Targets arrive every HOP_S (10 ms). Each viseme weight follows its target through a one-pole
filter whose time constant depends on the direction (a mouth opens fast and closes a little
slower; lips press together fastest, because bilabial closures last only 50-100 ms and must
be seen). Anticipation: the pose shown at time t is the filtered value at t + ANTICIPATE_S,
because lips start moving towards a sound before it is heard (co-articulation).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.speech.visemes import VISEMES, MouthPose

HOP_S = 0.010
ANTICIPATE_S = 0.030
# Per viseme (VISEMES order) attack and release time constants, seconds.
ATTACK_S = np.array([0.012, 0.030, 0.035, 0.035, 0.020], dtype=np.float32)
RELEASE_S = np.array([0.030, 0.060, 0.060, 0.060, 0.040], dtype=np.float32)
_A_UP = (1.0 - np.exp(-HOP_S / ATTACK_S)).astype(np.float32)
_A_DOWN = (1.0 - np.exp(-HOP_S / RELEASE_S)).astype(np.float32)


@dataclass
class Coarticulator:
    """Streaming smoother: push hop targets, read smoothed hops. Keeps only the last value."""

    state: np.ndarray = field(default_factory=lambda: np.zeros(len(VISEMES), np.float32))

    def push(self, target: np.ndarray) -> np.ndarray:
        a = np.where(target > self.state, _A_UP, _A_DOWN)
        self.state = self.state + a * (target.astype(np.float32) - self.state)
        return self.state.copy()

    def run(self, targets: np.ndarray) -> np.ndarray:
        """(n, V) targets -> (n, V) smoothed weights."""
        out = np.empty_like(targets, dtype=np.float32)
        for i in range(len(targets)):
            out[i] = self.push(targets[i])
        return out


def to_pose(weights: np.ndarray, floor: float = 0.02) -> MouthPose:
    """Weights -> MouthPose: tiny weights dropped, the sum capped at 1."""
    w = np.where(weights < floor, 0.0, weights).astype(np.float64)
    s = float(w.sum())
    if s > 1.0:
        w = w / s
    return MouthPose(tuple(float(x) for x in w))


def sample_frames(smoothed: np.ndarray, fps: float, n_frames: int) -> list[MouthPose]:
    """Poses at frame times k / fps from a smoothed (n_hops, V) track (with anticipation)."""
    poses = []
    for k in range(n_frames):
        h = int(round((k / fps + ANTICIPATE_S) / HOP_S))
        h = min(max(h, 0), len(smoothed) - 1) if len(smoothed) else -1
        poses.append(to_pose(smoothed[h]) if h >= 0 else MouthPose())
    return poses


def n_frames_for(duration_s: float, fps: float) -> int:
    """Frames covering ``duration_s`` to within half a frame (at least one)."""
    return max(1, int(round(duration_s * fps)))

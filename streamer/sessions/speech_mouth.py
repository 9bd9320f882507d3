"""Mouth poses from speech audio, for live sessions: the interface the speech player uses, and
the interim loudness analyser behind it.

The player (speech.py) only needs ``MouthAnalyser``: feed 48 kHz mono samples, get one
MouthPose per completed 10 ms hop, in order. An analyser with look-ahead returns fewer poses
than hops until more audio (or ``flush``) arrives; the player waits for a hop's pose before
it plays that hop, so look-ahead becomes latency, never misalignment.

``EnvelopeAnalyser`` is the fallback the issue allows ("loudness alone"): it opens the mouth
with the smoothed RMS level. The viseme analyser (engine/speech, branch h12video) replaces it
through ``make_analyser``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from engine.speech.visemes import VISEMES, MouthPose

RATE = 48_000
HOP = 480  # 10 ms at 48 kHz: the player's unit of audio and of mouth poses
_OPEN = VISEMES.index("open")


class MouthAnalyser(Protocol):
    def push(self, samples: np.ndarray) -> list[MouthPose]:
        """float32 mono at 48 kHz in (-1..1); one pose per newly completed hop."""
        ...

    def flush(self) -> list[MouthPose]:
        """The utterance ended: poses for every hop still owed (the last one zero-padded)."""
        ...


@dataclass
class EnvelopeAnalyser:
    """Mouth opening from loudness: RMS per 10 ms hop in dB, relative to the utterance's
    running peak (so a quiet and a loud TTS voice both open the mouth fully), with a fast
    attack and slower release like a jaw. No look-ahead."""

    range_db: float = 30.0  # peak - range_db and below: closed
    attack: float = 0.6  # share of the step taken per hop when opening
    release: float = 0.35  # ... when closing
    floor_dbfs: float = -55.0  # below this absolute level the hop is silence
    _peak_db: float = -30.0
    _level: float = 0.0
    _pending: np.ndarray = field(default_factory=lambda: np.zeros(0, np.float32))

    def _pose(self, hop: np.ndarray) -> MouthPose:
        rms = float(np.sqrt(np.mean(np.square(hop, dtype=np.float64)))) if hop.size else 0.0
        db = 20.0 * math.log10(max(rms, 1e-6))
        # The peak decays slowly (about 6 dB per second) so one loud word doesn't close the
        # mouth for the rest of a long utterance.
        self._peak_db = max(db, self._peak_db - 0.06)
        if db < self.floor_dbfs:
            target = 0.0
        else:
            target = min(1.0, max(0.0, (db - (self._peak_db - self.range_db)) / self.range_db))
        k = self.attack if target > self._level else self.release
        self._level += k * (target - self._level)
        weights = [0.0] * len(VISEMES)
        weights[_OPEN] = round(self._level, 4)
        return MouthPose(tuple(weights))

    def push(self, samples: np.ndarray) -> list[MouthPose]:
        buf = np.concatenate([self._pending, np.asarray(samples, np.float32)])
        n = len(buf) // HOP
        self._pending = buf[n * HOP:]
        return [self._pose(buf[i * HOP:(i + 1) * HOP]) for i in range(n)]

    def flush(self) -> list[MouthPose]:
        if self._pending.size == 0:
            return []
        hop = np.zeros(HOP, np.float32)
        hop[:self._pending.size] = self._pending
        self._pending = np.zeros(0, np.float32)
        return [self._pose(hop)]


# One new analyser per utterance. Swap this for the viseme analyser when it lands.
make_analyser: Callable[[], MouthAnalyser] = EnvelopeAnalyser


# --- until the engines draw Motion.mouth themselves ---
# The engines on this branch ignore Motion.mouth; the session folds the pose into the
# mouth_open control so the face talks anyway. Set to False once the engines render visemes
# (branch h12video), or the mouth opens twice.
FOLD_MOUTH_INTO_CONTROLS = True
_FOLD_GAIN = {"closed": 0.0, "open": 1.0, "round": 0.6, "spread": 0.45, "teeth_lip": 0.25}


def mouth_opening(pose: MouthPose) -> float:
    """How far a pose opens the jaw, 0..1 (the interim stand-in for real mouth shapes)."""
    return min(1.0, sum(_FOLD_GAIN[v] * w for v, w in zip(VISEMES, pose.weights)))

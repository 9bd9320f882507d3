"""Mouth poses from speech audio, for live sessions: the interface the speech player uses, and
the interim loudness analyser behind it.

The player (speech.py) only needs ``MouthAnalyser``: feed 48 kHz mono samples, get one
MouthPose per completed 10 ms hop, in order. An analyser with look-ahead returns fewer poses
than hops until more audio (or ``flush``) arrives; the player waits for a hop's pose before
it plays that hop, so look-ahead becomes latency, never misalignment.

``VisemeAdapter`` runs engine/speech's streaming VisemeAnalyser (phones + acoustics, 80 ms
look-ahead) at 100 poses a second, one per hop. ``TimingsAnalyser`` turns a client's phoneme or
viseme timings into the same per-hop poses (they replace the analysis). ``EnvelopeAnalyser``
(loudness alone) is kept as the cheapest fallback and a reference in tests.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from engine.speech.analysis import VisemeAnalyser
from engine.speech.timings import Timing, poses_from_timings
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


HOPS_PER_S = RATE // HOP  # 100: the analyser's "fps" is one pose per hop
FEED_STEP = 10 * HOP  # 100 ms per analyser feed


@dataclass
class VisemeAdapter:
    """engine.speech.analysis.VisemeAnalyser behind MouthAnalyser: int16 in, one pose per hop
    out once its look-ahead has arrived."""

    analyser: VisemeAnalyser = field(
        default_factory=lambda: VisemeAnalyser(RATE, float(HOPS_PER_S)))

    def push(self, samples: np.ndarray) -> list[MouthPose]:
        pcm = np.clip(np.asarray(samples, np.float32) * 32768.0, -32768, 32767).astype(np.int16)
        out: list[MouthPose] = []
        # Small steps: the analyser keeps only its last 64 smoothed hops (0.64 s), so one big
        # feed returned the same pose for every frame older than that (a frozen mouth).
        for i in range(0, len(pcm), FEED_STEP):
            self.analyser.feed(pcm[i:i + FEED_STEP])
            out.extend(self.analyser.drain())
        return out

    def flush(self) -> list[MouthPose]:
        self.analyser.finish()
        return self.analyser.drain()


@dataclass
class TimingsAnalyser:
    """A client's timings (engine/speech/timings.py) instead of analysis: the pose of hop k is
    the timings' pose at k * 10 ms; past the last timing the mouth rests."""

    timings: list[Timing]
    _poses: list[MouthPose] = field(default_factory=list)
    _samples: int = 0
    _emitted: int = 0

    def __post_init__(self) -> None:
        end = max((t.end_s for t in self.timings), default=0.0)
        self._poses = poses_from_timings(self.timings, float(HOPS_PER_S), end + 0.2)

    def _pose(self, k: int) -> MouthPose:
        return self._poses[k] if k < len(self._poses) else MouthPose()

    def push(self, samples: np.ndarray) -> list[MouthPose]:
        self._samples += len(samples)
        n = self._samples // HOP
        out = [self._pose(k) for k in range(self._emitted, n)]
        self._emitted = n
        return out

    def flush(self) -> list[MouthPose]:
        n = -(-self._samples // HOP)
        out = [self._pose(k) for k in range(self._emitted, n)]
        self._emitted = n
        return out


def make_analyser(timings: list[Timing] | None = None) -> MouthAnalyser:
    """One new analyser per utterance."""
    return TimingsAnalyser(timings) if timings is not None else VisemeAdapter()


# The engines draw Motion.mouth themselves (engine/speech/action_units.py, LivePortrait lip
# targets). True would also open the jaw through the mouth_open control: the interim stand-in
# used before the engines rendered visemes, kept for engines that ignore Motion.mouth.
FOLD_MOUTH_INTO_CONTROLS = False
_FOLD_GAIN = {"closed": 0.0, "open": 1.0, "round": 0.6, "spread": 0.45, "teeth_lip": 0.25}


def mouth_opening(pose: MouthPose) -> float:
    """How far a pose opens the jaw, 0..1 (the interim stand-in for real mouth shapes)."""
    return min(1.0, sum(_FOLD_GAIN[v] * w for v, w in zip(VISEMES, pose.weights)))

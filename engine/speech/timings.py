"""A client's phoneme or viseme timings -> mouth poses (they replace the audio analysis).

JSON shape (docs/speech.md): a list of objects
    {"start_ms": 0, "end_ms": 120, "phoneme": "HH"}        ARPAbet or IPA
    {"start_ms": 120, "end_ms": 200, "viseme": "open"}      ours or an Oculus viseme name
with an optional "weight" (0..1, default 1) scaling the shape. Gaps are silence; overlaps
take the later entry. Times are relative to the start of the audio.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Iterable

import numpy as np

from engine.speech.coarticulation import HOP_S, Coarticulator, n_frames_for, sample_frames
from engine.speech.phonemes import phoneme_weights, viseme_weights
from engine.speech.visemes import VISEMES, MouthPose

MAX_TIMINGS = 100_000


@dataclass(frozen=True)
class Timing:
    start_s: float
    end_s: float
    weights: np.ndarray  # (V,)


MAX_TIMING_MS = 3_600_000  # an hour: no utterance or clip is longer

def parse_timings(raw: Any) -> list[Timing]:
    """Validate the JSON shape above; ValueError with a message fit for a client."""
    if not isinstance(raw, list):
        raise ValueError("timings must be a JSON list of {start_ms, end_ms, phoneme|viseme}")
    if len(raw) > MAX_TIMINGS:
        raise ValueError(f"at most {MAX_TIMINGS} timings")
    out = []
    for i, item in enumerate(raw):
        if not isinstance(item, dict):
            raise ValueError(f"timings[{i}] must be an object")
        try:
            if isinstance(item["start_ms"], bool) or isinstance(item["end_ms"], bool):
                raise TypeError
            start, end = float(item["start_ms"]), float(item["end_ms"])
        except (KeyError, TypeError, ValueError, OverflowError):
            raise ValueError(f"timings[{i}] needs numeric start_ms and end_ms") from None
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end < start \
                or end > MAX_TIMING_MS:
            raise ValueError(f"timings[{i}]: need 0 <= start_ms <= end_ms <= {MAX_TIMING_MS}")
        if isinstance(item.get("viseme"), str):
            w = viseme_weights(item["viseme"])
        elif isinstance(item.get("phoneme"), str):
            w = phoneme_weights(item["phoneme"])
        else:
            raise ValueError(f"timings[{i}] needs a string 'viseme' or 'phoneme'")
        scale = item.get("weight", 1.0)
        if isinstance(scale, bool) or not isinstance(scale, (int, float)) \
                or not 0.0 <= float(scale) <= 1.0:
            raise ValueError(f"timings[{i}].weight must be a number in 0..1")
        out.append(Timing(start / 1000.0, end / 1000.0, w * float(scale)))
    return out


def hop_targets(timings: Iterable[Timing], n_hops: int) -> np.ndarray:
    targets = np.zeros((n_hops, len(VISEMES)), np.float32)
    for t in sorted(timings, key=lambda t: t.start_s):
        a, b = int(round(t.start_s / HOP_S)), int(round(t.end_s / HOP_S))
        if b <= a:
            b = a + 1  # an instant still shows for one hop
        targets[max(a, 0):min(b, n_hops)] = t.weights
    return targets


def poses_from_timings(timings: list[dict] | list[Timing], fps: float,
                       duration_s: float | None = None) -> list[MouthPose]:
    """One MouthPose per video frame (k / fps) for ``duration_s`` (default: the last end)."""
    parsed = [t for t in timings if isinstance(t, Timing)] if timings and isinstance(timings[0], Timing) \
        else parse_timings(timings)
    if duration_s is None:
        duration_s = max((t.end_s for t in parsed), default=0.0)
    n_frames = n_frames_for(duration_s, fps)
    n_hops = int(np.ceil(duration_s / HOP_S)) + 8
    smoothed = Coarticulator().run(hop_targets(parsed, n_hops))
    return sample_frames(smoothed, fps, n_frames)

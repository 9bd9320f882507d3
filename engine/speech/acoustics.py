"""Per-hop acoustic features of 16 kHz mono speech: loudness and coarse spectral shape.

One feature row per 10 ms hop, from a 25 ms Hann window centred on the hop (the usual speech
front end). Streaming: ``AcousticFrontEnd.feed`` keeps only the samples the next window needs.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

RATE = 16000
HOP = 160          # 10 ms
WIN = 400          # 25 ms
_NFFT = 512
_FREQS = np.fft.rfftfreq(_NFFT, 1.0 / RATE)
_LOW = _FREQS < 500.0                           # voicing / nasal murmur
_MID = (_FREQS >= 500.0) & (_FREQS < 2500.0)    # vowel formants
_HIGH = _FREQS >= 2500.0                        # frication
_WINDOW = np.hanning(WIN).astype(np.float32)

# Feature columns.
LEVEL_DB, LOW_SHARE, HIGH_SHARE, CENTROID = range(4)
N_FEATURES = 4


def hop_features(window: np.ndarray) -> np.ndarray:
    """One window (WIN float samples, -1..1) -> [level dBFS, low share, high share, centroid Hz]."""
    x = window.astype(np.float32)
    level = 10.0 * np.log10(float(np.mean(x * x)) + 1e-10)
    spec = np.abs(np.fft.rfft(x * _WINDOW, _NFFT)) ** 2
    total = float(spec.sum()) + 1e-12
    centroid = float((spec * _FREQS).sum() / total)
    return np.array([level, spec[_LOW].sum() / total, spec[_HIGH].sum() / total, centroid], np.float32)


@dataclass
class AcousticFrontEnd:
    """Feed 16 kHz float samples; read one feature row per completed hop."""

    # The pending samples start WIN // 2 before hop ``next_hop``'s centre (zeros before 0).
    pending: np.ndarray = field(default_factory=lambda: np.zeros(WIN // 2, np.float32))
    next_hop: int = 0

    def feed(self, samples: np.ndarray) -> np.ndarray:
        """Append samples; return the (k, N_FEATURES) rows of every hop whose window is complete."""
        self.pending = np.concatenate([self.pending, samples.astype(np.float32)])
        rows = []
        while len(self.pending) >= WIN:
            rows.append(hop_features(self.pending[:WIN]))
            self.pending = self.pending[HOP:]
            self.next_hop += 1
        return np.array(rows, np.float32).reshape(-1, N_FEATURES)

    def flush(self) -> np.ndarray:
        """Pad the tail with silence so every hop up to the last sample is complete."""
        return self.feed(np.zeros(WIN // 2, np.float32))

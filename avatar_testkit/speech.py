"""Test speech and what tests measure of it: espeak-ng voices, loudness envelopes, and the
mouth opening of a rendered face (FaceMesh inner-lip gap)."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import av
import numpy as np

from engine.landmarks import NoFaceError, detect_landmarks

ENVELOPE_HOP_S = 0.01


def espeak(text: str, rate: int = 16_000) -> np.ndarray:
    """int16 mono speech at ``rate``, spoken by espeak-ng (Debian package espeak-ng)."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is not installed (apt-get install espeak-ng; .ci/run does)")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "speech.wav"
        subprocess.run([exe, "-s", "150", "-w", str(path), text], check=True, timeout=60)
        with wave.open(str(path)) as w:
            src_rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), "<i2").astype(np.int16)
    return resample(pcm, src_rate, rate)


def resample(pcm: np.ndarray, src_rate: int, rate: int) -> np.ndarray:
    if src_rate == rate:
        return pcm
    r = av.AudioResampler(format="s16", layout="mono", rate=rate)
    frame = av.AudioFrame.from_ndarray(pcm.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate = src_rate
    out = [f.to_ndarray().reshape(-1) for f in r.resample(frame)]
    out += [f.to_ndarray().reshape(-1) for f in r.resample(None)]
    return np.concatenate(out).astype(np.int16)


def rms_envelope(samples: np.ndarray, rate: int, hop_s: float = ENVELOPE_HOP_S) -> np.ndarray:
    hop = int(rate * hop_s)
    n = len(samples) // hop
    x = samples[:n * hop].astype(np.float64).reshape(n, hop)
    return np.sqrt(np.mean(x * x, axis=1))


def timeline_envelope(times: np.ndarray, chunks: list[np.ndarray], grid: np.ndarray,
                      rate: int = 48_000) -> np.ndarray:
    """RMS of received audio (chunks starting at media ``times``) on a grid of bin starts."""
    hop = ENVELOPE_HOP_S
    acc = np.zeros(len(grid))
    cnt = np.zeros(len(grid))
    for t, c in zip(times, chunks):
        idx = ((t + np.arange(len(c)) / rate - grid[0]) / hop).astype(int)
        ok = (idx >= 0) & (idx < len(grid))
        np.add.at(acc, idx[ok], c[ok].astype(np.float64) ** 2)
        np.add.at(cnt, idx[ok], 1)
    return np.sqrt(acc / np.maximum(cnt, 1))


# FaceMesh's inner lip contour, in order round the mouth opening.
INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87, 178,
              88, 95)


def mouth_opening(frame: np.ndarray, measure: str = "area") -> float:
    """How open the mouth is, scale-free; nan when no face is found.

    "area": the area inside the inner lip contour over the squared eye-corner distance (it
    counts a rounded "o" as open as well as a dropped jaw); "gap": the inner-lip gap at the
    centre (points 13/14) over the eye-corner distance (33/263)."""
    try:
        p = detect_landmarks(frame).points
    except NoFaceError:
        return float("nan")
    eyes = max(float(np.linalg.norm(p[33, :2] - p[263, :2])), 1e-6)
    if measure == "gap":
        return float(np.linalg.norm(p[13, :2] - p[14, :2])) / eyes
    xy = p[list(INNER_LIPS), :2].astype(np.float64)
    area = 0.5 * abs(float(np.dot(xy[:, 0], np.roll(xy[:, 1], 1)) - np.dot(xy[:, 1], np.roll(xy[:, 0], 1))))
    return area / eyes ** 2


def best_lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> tuple[int, float]:
    """The shift k (in samples) maximising corr(a[t], b[t + k]), and that correlation."""
    best = (0, -2.0)
    for k in range(-max_lag, max_lag + 1):
        if k >= 0:
            x, y = a[:len(a) - k], b[k:]
        else:
            x, y = a[-k:], b[:len(b) + k]
        m = np.isfinite(x) & np.isfinite(y)
        if m.sum() < 10 or np.std(x[m]) == 0 or np.std(y[m]) == 0:
            continue
        c = float(np.corrcoef(x[m], y[m])[0, 1])
        if c > best[1]:
            best = (k, c)
    return best


def locate(template: np.ndarray, signal: np.ndarray) -> tuple[int, float]:
    """Where ``template`` best matches inside the longer ``signal``: (offset, correlation)."""
    best = (0, -2.0)
    n = len(template)
    for k in range(0, len(signal) - n + 1):
        y = signal[k:k + n]
        if np.std(y) == 0:
            continue
        c = float(np.corrcoef(template, y)[0, 1])
        if c > best[1]:
            best = (k, c)
    return best


def collapse_silence(env: np.ndarray, threshold: float, keep: int = 5) -> np.ndarray:
    """The envelope with every silent run (below ``threshold``) cut to ``keep`` bins, so two
    renditions of one utterance compare even when one has pauses inserted (a live stream
    whose buffer ran dry rests and resumes later)."""
    out: list[float] = []
    run = 0
    for v in env:
        if v < threshold:
            run += 1
            if run > keep:
                continue
        else:
            run = 0
        out.append(float(v))
    return np.array(out)

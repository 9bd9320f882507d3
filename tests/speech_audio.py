"""Test speech: espeak-ng (Debian's, installed by .ci/run) renders words to wav."""
from __future__ import annotations

import shutil
import subprocess
import tempfile
import wave
from pathlib import Path

import numpy as np
import pytest

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng is not installed")


def espeak(text: str, speed: int = 120) -> tuple[np.ndarray, int]:
    """(int16 mono samples, sample rate) of ``text`` spoken by espeak-ng."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "say.wav"
        subprocess.run(["espeak-ng", "-s", str(speed), "-w", str(path), text], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with wave.open(str(path)) as w:
            return np.frombuffer(w.readframes(w.getnframes()), np.int16).copy(), w.getframerate()


def wav_bytes(pcm: np.ndarray, rate: int) -> bytes:
    import io

    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.astype(np.int16).tobytes())
    return buf.getvalue()

"""Decode an uploaded audio file (wav, mp3, ogg/opus, m4a, flac...) to mono int16 with PyAV.
The one decoder for every upload of audio: /render/video and POST /sessions/{id}/speech."""
from __future__ import annotations

import io

import av
import numpy as np

AUDIO_RATE = 48000  # what both encoders (AAC, Opus) take natively


class AudioError(ValueError):
    """The upload is not decodable audio, or breaks a limit (message fit for a client).
    ``code``: "invalid_audio" or "audio_too_long" (the public error codes)."""

    def __init__(self, message: str, code: str = "invalid_audio") -> None:
        super().__init__(message)
        self.code = code


def decode_audio(data: bytes, max_duration_s: float, rate: int = AUDIO_RATE) -> np.ndarray:
    """Mono int16 samples at ``rate``. Blocking: call it in a thread."""
    if not data:
        raise AudioError("the audio file is empty")
    try:
        with av.open(io.BytesIO(data), mode="r", metadata_errors="ignore") as box:
            if not box.streams.audio:
                raise AudioError("the file has no audio stream")
            stream = box.streams.audio[0]
            resampler = av.AudioResampler(format="s16", layout="mono", rate=rate)
            chunks: list[np.ndarray] = []
            total = 0
            limit = int(max_duration_s * rate) + rate // 10
            for frame in box.decode(stream):
                for out in resampler.resample(frame):
                    a = out.to_ndarray().reshape(-1)
                    chunks.append(a)
                    total += len(a)
                if total > limit:
                    raise AudioError(f"the audio is longer than the {max_duration_s:g} s limit",
                                     "audio_too_long")
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
    except AudioError:
        raise
    except (av.error.FFmpegError, ValueError, IndexError, UnicodeDecodeError) as exc:
        raise AudioError("the audio file could not be decoded (wav, mp3, ogg/opus, m4a, flac)") from exc
    pcm = np.concatenate(chunks).astype(np.int16) if chunks else np.zeros(0, np.int16)
    if len(pcm) < rate // 50:
        raise AudioError("the audio is shorter than 20 ms")
    if len(pcm) > int(max_duration_s * rate) + rate // 10:
        raise AudioError(f"the audio is longer than the {max_duration_s:g} s limit",
                                     "audio_too_long")
    return pcm

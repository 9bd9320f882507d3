"""Streaming clip encoder (PyAV): frames and audio go in chunk by chunk, bytes come out at the end.

mp4 = H.264 (libx264, yuv420p) + AAC; webm = VP8 (libvpx, realtime) + Opus. Every call is
blocking: the handler runs them in a thread, one at a time, between engine chunks.
"""
from __future__ import annotations

import io
from dataclasses import dataclass, field
from fractions import Fraction

import av
import numpy as np

from streamer.video.audio import AUDIO_RATE

CONTAINERS: dict[str, tuple[str, str, str, dict[str, str]]] = {
    # format: (container, video codec, audio codec, video options)
    "mp4": ("mp4", "libx264", "aac", {"preset": "veryfast", "crf": "23"}),
    # One libvpx thread: its worker threads spin-wait, and on a busy 2-core machine that made
    # VP8 5-10x slower than single-threaded (bench/README.md, "Speech").
    "webm": ("webm", "libvpx", "libopus", {"deadline": "realtime", "cpu-used": "8", "crf": "10", "threads": "1"}),
}
VIDEO_BIT_RATE = {"webm": 1_000_000}  # libvpx's crf is a quality cap within this target
MIME = {"mp4": "video/mp4", "webm": "video/webm"}


@dataclass
class ClipEncoder:
    fmt: str
    fps: float
    width: int
    height: int
    with_audio: bool
    _buf: io.BytesIO = field(init=False, default_factory=io.BytesIO)
    _frames: int = field(init=False, default=0)
    _samples: int = field(init=False, default=0)

    def __post_init__(self) -> None:
        container, vcodec, acodec, vopts = CONTAINERS[self.fmt]
        self._box = av.open(self._buf, mode="w", format=container)
        rate = Fraction(self.fps).limit_denominator(1001)
        self._video = self._box.add_stream(vcodec, rate=rate, options=vopts)
        self._video.width, self._video.height = self.width, self.height
        self._video.pix_fmt = "yuv420p"
        self._video.time_base = 1 / rate
        if self.fmt in VIDEO_BIT_RATE:
            self._video.bit_rate = VIDEO_BIT_RATE[self.fmt]
        self._audio = None
        if self.with_audio:
            self._audio = self._box.add_stream(acodec, rate=AUDIO_RATE, layout="mono")
            if self.fmt == "mp4":
                self._audio.bit_rate = 96000

    def add_frames(self, frames: list[np.ndarray]) -> None:
        for img in frames:
            vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(img), format="rgb24")
            vf.pts = self._frames
            self._frames += 1
            self._box.mux(self._video.encode(vf))

    def add_audio(self, pcm: np.ndarray) -> None:
        if self._audio is None or not len(pcm):
            return
        af = av.AudioFrame.from_ndarray(np.ascontiguousarray(pcm, dtype=np.int16).reshape(1, -1),
                                        format="s16", layout="mono")
        af.sample_rate = AUDIO_RATE
        af.pts = self._samples
        af.time_base = Fraction(1, AUDIO_RATE)
        self._samples += len(pcm)
        self._box.mux(self._audio.encode(af))

    def finish(self) -> bytes:
        self._box.mux(self._video.encode(None))
        if self._audio is not None:
            self._box.mux(self._audio.encode(None))
        self._box.close()
        return self._buf.getvalue()

    def abort(self) -> None:
        try:
            self._box.close()
        except Exception:  # noqa: BLE001 - a half-written clip is thrown away anyway
            pass

"""The session's sound for one WebRTC viewer: 20 ms frames of 48 kHz mono read from the
session's speech timeline (speech.py), silence when nobody speaks. aiortc encodes them as Opus.

Each frame's RTP timestamp is its timeline position, and the frame is handed to the encoder
at the moment that position plays (the pacing below), so the RTCP sender reports map audio
and video to the same clock. A track that falls behind (a stalled loop) skips ahead instead
of playing late audio forever: the timeline, not the track, decides what plays when.
"""
from __future__ import annotations

import asyncio
import fractions

import av
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamer.sessions.speech import SpeechPlayer
from streamer.sessions.speech_mouth import RATE

FRAME_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = fractions.Fraction(1, RATE)
MAX_BEHIND_S = 1.0  # later than this (a stalled loop), skip to now; less is caught up


class SessionAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, player: SpeechPlayer) -> None:
        super().__init__()
        self.player = player
        self._pos: int | None = None  # timeline position of the next frame
        self._first: int = 0
        self.frames_sent = 0
        self.skipped = 0

    async def recv(self) -> av.AudioFrame:
        if self.readyState != "live":
            raise MediaStreamError
        p = self.player
        if self._pos is None:
            self._pos = p.position(p.clock())
            self._first = self._pos
        else:
            self._pos += FRAME_SAMPLES
            wait = p.t0 + self._pos / RATE - p.clock()
            if wait > 0:
                await asyncio.sleep(wait)
            elif -wait > MAX_BEHIND_S:
                behind = p.position(p.clock()) - self._pos
                jump = behind // FRAME_SAMPLES * FRAME_SAMPLES
                self._pos += jump
                self.skipped += jump // FRAME_SAMPLES
        if self.readyState != "live":
            raise MediaStreamError
        samples = p.read(self._pos, FRAME_SAMPLES)
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = RATE
        frame.pts = self._pos - self._first
        frame.time_base = AUDIO_TIME_BASE
        self.frames_sent += 1
        return frame

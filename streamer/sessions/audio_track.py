"""The session's sound for one WebRTC viewer: 20 ms Opus packets of the session's speech
timeline (speech.py), silence when nobody speaks.

Each packet's RTP timestamp is its timeline position, and the packet is handed to the sender
at the moment that position plays (the pacing below), so the RTCP sender reports map audio
and video to the same clock. A track that falls behind (a stalled loop) skips ahead instead
of playing late audio forever: the timeline, not the track, decides what plays when.

The track encodes itself and hands aiortc finished packets (its ``pack`` path), because
aiortc's own path costs about 0.5 ms of CPU per 20 ms frame per viewer even for silence
(a pure-Python audio-level loop over every sample, a resampler, an executor hop and the Opus
encode; bench/README.md, issue 14): 50 frames a second for every viewer of every session,
nearly always silent. Here silence is one canned packet, made once; speech is encoded on an
executor thread by an encoder started fresh at each onset, so its history matches what the
receiver decoded before (silence).
"""
from __future__ import annotations

import asyncio
import fractions
from functools import lru_cache

import av
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

from streamer.sessions.speech import SpeechPlayer
from streamer.sessions.speech_mouth import RATE

FRAME_SAMPLES = 960  # 20 ms
AUDIO_TIME_BASE = fractions.Fraction(1, RATE)
MAX_BEHIND_S = 1.0  # later than this (a stalled loop), skip to now; less is caught up
# What aiortc's own Opus encoder uses (the SDP says opus/48000/2): stereo, 96 kbit/s, VoIP.
OPUS_BITRATE = 96_000


def _opus_encoder() -> av.CodecContext:
    ctx = av.CodecContext.create("libopus", "w")
    ctx.bit_rate = OPUS_BITRATE
    ctx.format = "s16"
    ctx.layout = "stereo"
    ctx.options = {"application": "voip"}
    ctx.sample_rate = RATE
    ctx.time_base = AUDIO_TIME_BASE
    return ctx


def _encode(ctx: av.CodecContext, mono: np.ndarray, pts: int) -> bytes | None:
    """One 20 ms mono int16 frame -> one Opus packet (None if the encoder held it back)."""
    stereo = np.repeat(mono.astype(np.int16, copy=False), 2).reshape(1, -1)
    frame = av.AudioFrame.from_ndarray(stereo, format="s16", layout="stereo")
    frame.sample_rate = RATE
    frame.pts = pts
    frame.time_base = AUDIO_TIME_BASE
    packets = ctx.encode(frame)
    return bytes(packets[-1]) if packets else None


@lru_cache(maxsize=1)
def silent_packet() -> bytes:
    """The packet a steady Opus encoder makes for 20 ms of digital silence (3 bytes)."""
    ctx = _opus_encoder()
    zeros = np.zeros(FRAME_SAMPLES, np.int16)
    data = b""
    for i in range(4):  # past the encoder's start-up frames: the steady-state silence packet
        data = _encode(ctx, zeros, i * FRAME_SAMPLES) or data
    return data


class SessionAudioTrack(MediaStreamTrack):
    kind = "audio"

    def __init__(self, player: SpeechPlayer) -> None:
        super().__init__()
        self.player = player
        self._pos: int | None = None  # timeline position of the next frame
        self._first: int = 0
        self._encoder: av.CodecContext | None = None  # while speech plays; None in silence
        self.frames_sent = 0
        self.encoded = 0  # frames that carried sound (the rest were the canned silence)
        self.skipped = 0

    async def recv(self) -> av.Packet:
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
        pts = self._pos - self._first
        samples = p.read(self._pos, FRAME_SAMPLES)
        data = None
        if samples.any():
            if self._encoder is None:
                self._encoder = _opus_encoder()  # fresh at each onset: its history is silence
            data = await asyncio.get_running_loop().run_in_executor(
                None, _encode, self._encoder, samples, pts)
            self.encoded += 1
        else:
            self._encoder = None
        packet = av.Packet(data or silent_packet())
        packet.pts = pts
        packet.time_base = AUDIO_TIME_BASE
        self.frames_sent += 1
        return packet

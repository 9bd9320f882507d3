"""One WebRTC viewer: an aiortc peer with one video track fed by the session's frames.

Follows the measured traps in shared/notes/webrtc.md: ICE servers from config only,
codec preferences set after addTrack and before setRemoteDescription, one newest frame
queued per track, timestamps on a 90 kHz clock, and one shielded close task per peer.
"""
from __future__ import annotations

import asyncio
import fractions
import logging
import time
from typing import Callable

import av
import cv2
import numpy as np
from aiortc import (RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender,
                    RTCSessionDescription)
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from streamer.sessions.audio_track import SessionAudioTrack
from streamer.sessions.candidate_policy import candidate_problem, offer_problem
from streamer.sessions.speech import SpeechPlayer

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
CODEC_MIME = {"vp8": "video/VP8", "h264": "video/H264"}


class SdpError(Exception):
    """The client's offer or candidate could not be applied."""


class SessionVideoTrack(MediaStreamTrack):
    """Sends the newest frame as soon as the scheduler hands it over (the scheduler paces at
    the session fps). If no frame comes for two periods, repeats the last one so the
    receiver's jitter buffer keeps flowing."""

    kind = "video"

    def __init__(self, fps: int, size: int) -> None:
        super().__init__()
        self._period = 1.0 / fps
        self._newest: np.ndarray | None = None
        self._last: np.ndarray = np.zeros((size, size, 3), np.uint8)
        self._event = asyncio.Event()
        self._start: float | None = None
        self._last_pts = -1
        self.frames_sent = 0

    def push_frame(self, frame: np.ndarray) -> None:
        self._newest = frame  # a queue of one: an unsent older frame is simply replaced
        self._event.set()

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        try:
            await asyncio.wait_for(self._event.wait(), timeout=2 * self._period)
        except asyncio.TimeoutError:
            pass
        if self.readyState != "live":
            raise MediaStreamError
        self._event.clear()
        if self._newest is not None:
            self._last, self._newest = self._newest, None
        now = time.monotonic()
        if self._start is None:
            self._start = now
        pts = int((now - self._start) * VIDEO_CLOCK_RATE)
        pts = max(pts, self._last_pts + 1)  # strictly increasing, whatever the clock did
        self._last_pts = pts
        # OpenCV's RGB->I420 (BT.601 limited range, like swscale's default) takes a third of
        # the time the encoder's own reformat would.
        frame = av.VideoFrame.from_ndarray(cv2.cvtColor(self._last, cv2.COLOR_RGB2YUV_I420),
                                           format="yuv420p")
        frame.pts = pts
        frame.time_base = VIDEO_TIME_BASE
        self.frames_sent += 1
        return frame


class Viewer:
    """One peer connection watching one session. ``close()`` is idempotent and never raises."""

    def __init__(self, fps: int, size: int, ice_servers: list[str],
                 on_closed: Callable[["Viewer"], None],
                 speech: SpeechPlayer | None = None) -> None:
        servers = [RTCIceServer(urls=[u]) for u in ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.track = SessionVideoTrack(fps, size)
        # The session's sound (speech.py); used when the offer has an audio m-line.
        self.audio = SessionAudioTrack(speech) if speech is not None else None
        self._on_closed = on_closed
        self._close_task: asyncio.Task | None = None

        @self.pc.on("connectionstatechange")
        async def _state() -> None:
            # "failed": the client vanished; close from a fresh task. Never close from the
            # "closed" report itself (see notes: concurrent closes share one future).
            if self.pc.connectionState == "failed":
                asyncio.get_running_loop().create_task(self.close())

    def push_frame(self, frame: np.ndarray) -> None:
        self.track.push_frame(frame)

    async def answer(self, offer_sdp: str, codec: str) -> str:
        problem = offer_problem(offer_sdp)  # before aiortc/aioice see it
        if problem is not None:
            raise SdpError(problem)
        try:
            self.pc.addTrack(self.track)
            transceiver = next(t for t in self.pc.getTransceivers() if t.sender.track is self.track)
            mime = CODEC_MIME[codec]
            caps = RTCRtpSender.getCapabilities("video").codecs
            prefs = [c for c in caps if c.mimeType == mime]
            prefs += [c for c in caps if c.mimeType == "video/rtx"]
            transceiver.setCodecPreferences(prefs)
            if self.audio is not None and _offers_audio(offer_sdp):
                self._add_audio()
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many types for a bad SDP
            raise SdpError(f"could not answer the offer: {exc}") from None
        return self.pc.localDescription.sdp

    def _add_audio(self) -> None:
        """Opus only: the one audio codec every browser decodes at 48 kHz."""
        self.pc.addTrack(self.audio)
        transceiver = next(t for t in self.pc.getTransceivers() if t.sender.track is self.audio)
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == "audio/opus"])

    async def add_candidate(self, candidate: str | None, sdp_mid: str | None,
                            sdp_mline_index: int | None) -> None:
        if candidate is None:
            return  # end of trickling: aiortc needs nothing
        text = candidate.split(":", 1)[1] if candidate.startswith("candidate:") else candidate
        try:
            c = candidate_from_sdp(text)
        except Exception:  # noqa: BLE001
            raise SdpError("candidate: cannot parse the candidate line") from None
        problem = candidate_problem(c.ip, c.port, c.protocol, c.type)  # before aioice sees it
        if problem is not None:
            raise SdpError(f"candidate: {problem}")
        c.sdpMid = sdp_mid
        c.sdpMLineIndex = sdp_mline_index
        if c.sdpMid is None and c.sdpMLineIndex is None:
            c.sdpMLineIndex = 0
        try:
            await self.pc.addIceCandidate(c)
        except Exception as exc:  # noqa: BLE001
            raise SdpError(f"candidate: {exc}") from None

    async def close(self) -> None:
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._do_close())
        await asyncio.shield(self._close_task)

    async def _do_close(self) -> None:
        try:
            self.track.stop()
            if self.audio is not None:
                self.audio.stop()
            await self.pc.close()
        except Exception as exc:  # noqa: BLE001 - closing must never raise into the caller
            log.debug("peer close: %r", exc)
        finally:
            self._on_closed(self)


def _offers_audio(sdp: str) -> bool:
    return any(line.startswith("m=audio") for line in sdp.splitlines())

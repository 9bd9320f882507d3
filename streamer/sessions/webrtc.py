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

from streamer.sessions.candidate_policy import candidate_problem, offer_problem

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
                 connect_timeout_s: float | None = None) -> None:
        servers = [RTCIceServer(urls=[u]) for u in ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.track = SessionVideoTrack(fps, size)
        self._on_closed = on_closed
        self._close_task: asyncio.Task | None = None
        self._connect_timeout_s = connect_timeout_s
        self._deadline: asyncio.TimerHandle | None = None
        # Why it closed: "closed" (by us: socket/session gone), "failed" (ICE/DTLS failed),
        # "connect_timeout" (not connected within the deadline). Set before the close starts.
        self.close_reason: str | None = None

        @self.pc.on("connectionstatechange")
        async def _state() -> None:
            # "failed": the client vanished or ICE cannot succeed; close from a fresh task.
            # Never close from the "closed" report itself (concurrent closes share one future).
            state = self.pc.connectionState
            if state == "connected" and self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None
            elif state == "failed":
                self._close_soon("failed")

    @property
    def connected(self) -> bool:
        return self.pc.connectionState == "connected"

    def _close_soon(self, reason: str) -> None:
        if self.close_reason is None:
            self.close_reason = reason
        asyncio.get_running_loop().create_task(self.close())

    def _connect_deadline(self) -> None:
        self._deadline = None
        if not self.connected and self._close_task is None:
            log.info("viewer not connected within %.3g s: dropped", self._connect_timeout_s)
            self._close_soon("connect_timeout")

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
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many types for a bad SDP
            raise SdpError(f"could not answer the offer: {exc}") from None
        if self._connect_timeout_s and self._close_task is None:
            # ICE that can never succeed would otherwise hold the viewer slot, and keep the
            # session rendering for it, until the socket closes.
            self._deadline = asyncio.get_running_loop().call_later(self._connect_timeout_s,
                                                                   self._connect_deadline)
        return self.pc.localDescription.sdp

    async def add_candidate(self, candidate: str | None, sdp_mid: str | None,
                            sdp_mline_index: int | None) -> None:
        if candidate is None:
            # End of candidates: aioice then fails the check list once every pair has failed,
            # instead of waiting for more candidates forever.
            try:
                await self.pc.addIceCandidate(None)
            except Exception as exc:  # noqa: BLE001
                raise SdpError(f"candidate: {exc}") from None
            return
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
        if self.close_reason is None:
            self.close_reason = "closed"
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None
        if self._close_task is None:
            self._close_task = asyncio.get_running_loop().create_task(self._do_close())
        await asyncio.shield(self._close_task)

    async def _do_close(self) -> None:
        try:
            self.track.stop()
            await self.pc.close()
        except Exception as exc:  # noqa: BLE001 - closing must never raise into the caller
            log.debug("peer close: %r", exc)
        finally:
            self._on_closed(self)

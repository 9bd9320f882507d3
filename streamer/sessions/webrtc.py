"""One WebRTC viewer: an aiortc peer with one video track fed by the session's shared
encoder (video.py: one encode per frame for all viewers; the track carries packets).

Follows the measured traps in shared/notes/webrtc.md: ICE servers from config only,
codec preferences set after addTrack and before setRemoteDescription, timestamps on a
90 kHz clock, and one shielded close task per peer.
"""
from __future__ import annotations

import asyncio
import logging
from typing import Callable

from aiortc import (RTCConfiguration, RTCIceServer, RTCPeerConnection, RTCRtpSender,
                    RTCSessionDescription)
from aiortc.sdp import candidate_from_sdp

from streamer.sessions.candidate_policy import candidate_problem, offer_problem
from streamer.sessions.video import SessionEncoder

log = logging.getLogger(__name__)

CODEC_MIME = {"vp8": "video/VP8", "h264": "video/H264"}


class SdpError(Exception):
    """The client's offer or candidate could not be applied."""


class Viewer:
    """One peer connection watching one session. ``close()`` is idempotent and never raises."""

    def __init__(self, encoder: SessionEncoder, ice_servers: list[str],
                 on_closed: Callable[["Viewer"], None]) -> None:
        servers = [RTCIceServer(urls=[u]) for u in ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.track = encoder.new_track()
        self._encoder = encoder
        self._on_closed = on_closed
        self._close_task: asyncio.Task | None = None

        @self.pc.on("connectionstatechange")
        async def _state() -> None:
            # "failed": the client vanished; close from a fresh task. Never close from the
            # "closed" report itself (see notes: concurrent closes share one future).
            if self.pc.connectionState == "failed":
                asyncio.get_running_loop().create_task(self.close())

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
            # The sender only packetizes the shared encoder's packets, so its receiver's
            # keyframe requests (PLI/FIR) must reach that encoder.
            transceiver.sender._send_keyframe = self._encoder.request_keyframe
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            answer = await self.pc.createAnswer()
            await self.pc.setLocalDescription(answer)
        except Exception as exc:  # noqa: BLE001 - aiortc raises many types for a bad SDP
            raise SdpError(f"could not answer the offer: {exc}") from None
        return self.pc.localDescription.sdp

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
            await self.pc.close()
        except Exception as exc:  # noqa: BLE001 - closing must never raise into the caller
            log.debug("peer close: %r", exc)
        finally:
            self._on_closed(self)

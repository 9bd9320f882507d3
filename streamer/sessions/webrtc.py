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

from streamer.sessions.audio_track import SessionAudioTrack
from streamer.sessions.candidate_policy import candidate_problem, offer_problem
from streamer.sessions.playout_delay import SpeechHold, request_zero_playout_delay
from streamer.sessions.video import SessionEncoder
from streamer.sessions.speech import SpeechPlayer

log = logging.getLogger(__name__)

CODEC_MIME = {"vp8": "video/VP8", "h264": "video/H264"}


class SdpError(Exception):
    """The client's offer or candidate could not be applied."""


class Viewer:
    """One peer connection watching one session. ``close()`` is idempotent and never raises."""

    def __init__(self, encoder: SessionEncoder, ice_servers: list[str],
                 on_closed: Callable[["Viewer"], None],
                 connect_timeout_s: float | None = None,
                 speech: SpeechPlayer | None = None) -> None:
        servers = [RTCIceServer(urls=[u]) for u in ice_servers]
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=servers))
        self.track = encoder.new_track()
        self._encoder = encoder
        # The session's sound (speech.py); used when the offer has an audio m-line.
        self.audio = SessionAudioTrack(speech) if speech is not None else None
        self._speech = speech
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
            synced = None
            if self.audio is not None and _offers_audio(offer_sdp):
                self._add_audio()
                synced = SpeechHold(self._speech.active)
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer_sdp, type="offer"))
            # Browsers that offer it then show each frame once decoded (no smoothing delay),
            # except while speech plays: then they may hold video back to lip-sync it.
            request_zero_playout_delay(transceiver, offer_sdp, synced)
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

    def _add_audio(self) -> None:
        """Opus only: the one audio codec every browser decodes at 48 kHz."""
        self.pc.addTrack(self.audio)
        transceiver = next(t for t in self.pc.getTransceivers() if t.sender.track is self.audio)
        caps = RTCRtpSender.getCapabilities("audio").codecs
        transceiver.setCodecPreferences([c for c in caps if c.mimeType == "audio/opus"])

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
            if self.audio is not None:
                self.audio.stop()
            await self.pc.close()
        except Exception as exc:  # noqa: BLE001 - closing must never raise into the caller
            log.debug("peer close: %r", exc)
        finally:
            self._on_closed(self)


def _offers_audio(sdp: str) -> bool:
    return any(line.startswith("m=audio") for line in sdp.splitlines())

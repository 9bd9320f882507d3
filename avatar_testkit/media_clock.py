"""An aiortc receiver of a session's video AND audio that places every decoded frame on the
sender's clock, the way a browser does lip sync: through RTCP sender reports.

A sender report pairs one RTP timestamp with the sender's NTP wall time. aiortc's receiver
hands frames out with ``pts = rtp_timestamp - first_rtp_timestamp``; adding that origin back
and mapping through the sender reports gives each frame's media time on the sender's clock. Measuring lip sync or interrupt latency in media time makes the result independent of
how late this (loaded) machine got round to decoding: wall-clock arrival times are not used.

    rx = AVReceiver()
    await rx.negotiate(client)          # client: avatar_testkit.pyclient.SessionClient
    ... speak ...
    await rx.wait_reports(2)            # at least 2 sender reports per track, after the speech
    t, pcm = rx.audio_timeline()        # media time of each 48 kHz sample run
    vt, frames = rx.video_frames()
"""
from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtcpSrPacket

AUDIO_RATE = 48_000
VIDEO_RATE = 90_000


def _ntp_seconds(ntp: int) -> float:
    return (ntp >> 32) + (ntp & 0xFFFFFFFF) / 2**32


def _signed32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - 2**32 if x >= 2**31 else x


@dataclass
class _Track:
    kind: str
    receiver: Any
    clock: int
    reports: list[tuple[int, float]] = field(default_factory=list)  # (rtp ts, ntp seconds)
    frames: list[tuple[int, Any]] = field(default_factory=list)  # (pts, decoded data)

    def hook(self) -> None:
        original = self.receiver._handle_rtcp_packet

        async def handle_rtcp(packet: Any) -> None:
            if isinstance(packet, RtcpSrPacket):
                self.reports.append((packet.sender_info.rtp_timestamp,
                                     _ntp_seconds(packet.sender_info.ntp_timestamp)))
            await original(packet)

        self.receiver._handle_rtcp_packet = handle_rtcp

    def origin(self) -> int:
        mapper = self.receiver._RTCRtpReceiver__timestamp_mapper
        return int(mapper._origin)

    def media_time(self, pts: int) -> float:
        """Sender NTP seconds of a frame with this (receiver) pts.

        Each report pairs an RTP timestamp with the wall time its packet *left* the sender,
        and a loaded sender sends some packets late, never early. So the mapping takes the
        smallest wall-minus-media offset over all reports (the least delayed packet) and
        applies it to every frame: one straight line at the RTP clock rate, not a jumpy one."""
        if not self.reports:
            raise RuntimeError(f"no sender report on the {self.kind} track yet")
        base = self.reports[0][0]
        offset = min(ntp - _signed32(rtp - base) / self.clock for rtp, ntp in self.reports)
        raw = (self.origin() + int(pts)) & 0xFFFFFFFF
        return offset + _signed32(raw - base) / self.clock


class AVReceiver:
    def __init__(self) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTransceiver("video", direction="recvonly")
        self.pc.addTransceiver("audio", direction="recvonly")
        self.tracks: dict[str, _Track] = {}
        self._tasks: list[asyncio.Task] = []
        self._changed = asyncio.Event()

    async def negotiate(self, client: Any, timeout: float = 15.0) -> None:
        got: dict[str, Any] = {}
        both = asyncio.get_running_loop().create_future()

        @self.pc.on("track")
        def _on_track(track: Any) -> None:
            got[track.kind] = track
            if len(got) == 2 and not both.done():
                both.set_result(None)

        await self.pc.setLocalDescription(await self.pc.createOffer())
        n = len(client.events)
        await client.send({"type": "offer", "sdp": self.pc.localDescription.sdp})
        answer = await client.wait_for("answer", timeout=timeout, after=n)
        await self.pc.setRemoteDescription(RTCSessionDescription(answer["sdp"], "answer"))
        await asyncio.wait_for(both, timeout)
        for t in self.pc.getTransceivers():
            kind = t.receiver.track.kind
            tr = _Track(kind, t.receiver, AUDIO_RATE if kind == "audio" else VIDEO_RATE)
            tr.hook()
            self.tracks[kind] = tr
            self._tasks.append(asyncio.get_running_loop().create_task(self._pull(tr, got[kind])))

    async def _pull(self, tr: _Track, track: Any) -> None:
        try:
            while True:
                frame = await track.recv()
                if tr.kind == "audio":
                    data = frame.to_ndarray().reshape(-1, len(frame.layout.channels))
                    data = data.mean(axis=1).astype(np.float32) / 32768.0  # mono
                else:
                    data = frame.to_ndarray(format="rgb24")
                tr.frames.append((int(frame.pts), data))
                self._changed.set()
        except MediaStreamError:
            return

    async def wait_until(self, predicate: Any, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not predicate():
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("receiver condition not met")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), min(left, 0.5))
            except asyncio.TimeoutError:
                pass

    def reports_after(self, kind: str, n: int) -> int:
        return len(self.tracks[kind].reports) - n

    async def wait_reports(self, count: int, timeout: float = 30.0) -> None:
        """Until every track has ``count`` more sender reports than now (they come every
        0.5-1.5 s), so frames received so far can all be mapped."""
        start = {k: len(t.reports) for k, t in self.tracks.items()}
        await self.wait_until(lambda: all(len(t.reports) - start[k] >= count
                                          for k, t in self.tracks.items()), timeout)

    def audio_timeline(self) -> tuple[np.ndarray, np.ndarray]:
        """(media time of each audio frame's first sample, that frame's mono samples)."""
        tr = self.tracks["audio"]
        return (np.array([tr.media_time(p) for p, _ in tr.frames]),
                [d for _, d in tr.frames])  # type: ignore[return-value]

    def audio_placed(self) -> tuple[np.ndarray, int]:
        """The received audio laid out by RTP timestamp (exact sample positions, immune to how
        late anything was sent or decoded), and the pts of its first sample."""
        tr = self.tracks["audio"]
        p0 = tr.frames[0][0]
        out = np.zeros(tr.frames[-1][0] - p0 + len(tr.frames[-1][1]), np.float32)
        for p, d in tr.frames:
            out[p - p0:p - p0 + len(d)] = d
        return out, p0

    def video_frames(self) -> tuple[np.ndarray, list[np.ndarray]]:
        tr = self.tracks["video"]
        return np.array([tr.media_time(p) for p, _ in tr.frames]), [f for _, f in tr.frames]

    async def close(self) -> None:
        await self.pc.close()
        for t in self._tasks:
            t.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

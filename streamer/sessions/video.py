"""One video encoder per session, shared by every WebRTC viewer of that session.

aiortc encodes per sender: N viewers of a session would cost N encodes of the same frame.
Here the session encodes each handed-over frame once (libvpx / libx264 through PyAV, on a
small bounded thread pool) and gives the same ``av.Packet`` to every viewer's track; aiortc's
sender then only packetizes it (its ``Encoder.pack`` path), with its own RTP sequence.

Costs it also cuts (bench/README.md, "Sessions: headroom, latency, shared encode"):
- RGB -> I420 once per frame (OpenCV, BT.601 limited range like swscale's default);
- libvpx real-time settings tuned for speed (``VP8_OPTIONS``);
- a frame identical to the last one (the scheduler reused it: nothing moved) is not encoded
  again, except as a slow heartbeat and for the few frames right after a change (receivers
  such as aiortc complete a frame only when the next one starts).

Keyframes: when a viewer joins, when a viewer's receiver asks (PLI/FIR, hooked on its sender),
and when a viewer's queue overflowed.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import fractions
import logging
import os
import time
from collections import deque
from typing import Callable

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError, MediaStreamTrack

log = logging.getLogger(__name__)

VIDEO_CLOCK_RATE = 90_000
VIDEO_TIME_BASE = fractions.Fraction(1, VIDEO_CLOCK_RATE)
# Fixed bitrates (one encode serves every viewer, so no per-viewer REMB adaptation).
BITRATE = {"vp8": 1_200_000, "h264": 1_500_000}
# libvpx real-time at its fastest speed, 16 (aiortc uses 6): about 0.7x the CPU of speed
# 10 at the same PSNR on session frames (bench/encode_bench.py, bench/README.md).
# static-thresh 300: macroblocks that barely changed (most of a portrait between two frames)
# skip their residual: 0.7x the encode CPU and 0.7x the RTP packets per frame (so less
# sending here and less receiving at every viewer) for -0.6 dB PSNR median
# (bench/encode_options_bench.py; issue 14 in bench/README.md).
VP8_OPTIONS = {"deadline": "realtime", "cpu-used": "16", "lag-in-frames": "0",
               "static-thresh": "300", "noise-sensitivity": "0", "undershoot-pct": "100",
               "overshoot-pct": "15", "partitions": "0", "error-resilient": "1"}
H264_OPTIONS = {"tune": "zerolatency", "preset": "ultrafast", "level": "31"}
HEARTBEAT_S = 0.25  # an unchanged picture is still sent this often
AFTER_CHANGE = 2  # identical frames still encoded right after a change
TRACK_QUEUE = 8  # packets waiting for one viewer's sender; past it: resync with a keyframe

# libvpx/libx264 release the GIL: encodes of different sessions run on several cores (each
# session keeps at most one in flight). Bounded: at most this many encodes at once.
_POOL = concurrent.futures.ThreadPoolExecutor(max(2, min(8, os.cpu_count() or 1)),
                                              thread_name_prefix="session-encode")


def _context(codec: str, size: int, fps: int) -> av.CodecContext:
    ctx = av.CodecContext.create("libvpx" if codec == "vp8" else "libx264", "w")
    ctx.width = ctx.height = size
    ctx.pix_fmt = "yuv420p"
    ctx.bit_rate = BITRATE[codec]
    ctx.framerate = fractions.Fraction(fps, 1)
    ctx.time_base = VIDEO_TIME_BASE
    ctx.gop_size = 3000  # keyframes on demand only
    if codec == "vp8":
        ctx.qmin, ctx.qmax = 2, 56
        ctx.options = dict(VP8_OPTIONS, bufsize=str(BITRATE[codec]),
                           minrate=str(BITRATE[codec]), maxrate=str(BITRATE[codec]))
    else:
        ctx.options = dict(H264_OPTIONS)
        ctx.profile = "Baseline"
    ctx.thread_count = 1
    return ctx


def rgb_to_i420(frame: np.ndarray) -> av.VideoFrame:
    return av.VideoFrame.from_ndarray(cv2.cvtColor(frame, cv2.COLOR_RGB2YUV_I420),
                                      format="yuv420p")


class PacketTrack(MediaStreamTrack):
    """A viewer's video track: hands its sender the session encoder's packets in order."""

    kind = "video"

    def __init__(self, encoder: "SessionEncoder") -> None:
        super().__init__()
        self._encoder = encoder
        self._queue: deque[av.Packet] = deque()
        self._event = asyncio.Event()
        self.frames_sent = 0

    def push_packet(self, packet: av.Packet) -> None:
        if len(self._queue) >= TRACK_QUEUE:
            # A P-frame cannot be skipped alone: drop what waits and restart from a keyframe.
            self._queue.clear()
            self._encoder.request_keyframe()
            return
        self._queue.append(packet)
        self._event.set()

    async def recv(self) -> av.Packet:
        while not self._queue:
            if self.readyState != "live":
                raise MediaStreamError
            self._event.clear()
            await self._event.wait()
        if self.readyState != "live":
            raise MediaStreamError
        self.frames_sent += 1
        return self._queue.popleft()

    def stop(self) -> None:
        super().stop()
        self._event.set()  # wake a waiting recv() so the sender's loop ends
        self._encoder.remove_track(self)


class SessionEncoder:
    """Encodes a session's frames once for all its viewers; at most one encode in flight
    (a newer frame waiting replaces an older one: the current picture, never a backlog)."""

    def __init__(self, codec: str, size: int, fps: int,
                 on_encode: Callable[[float], None] | None = None) -> None:
        self.codec = codec
        self.size = size
        self.fps = fps
        self.on_encode = on_encode  # the headroom monitor's add_encode(seconds)
        self.tracks: set[PacketTrack] = set()
        self.encodes = 0
        self.skipped = 0
        self._ctx: av.CodecContext | None = None
        self._keyframe = True
        self._pending: np.ndarray | None = None
        self._task: asyncio.Task | None = None
        self._last: np.ndarray | None = None
        self._last_t = float("-inf")
        self._same = 0  # identical frames encoded since the last change
        self._t0: float | None = None
        self._last_pts = -1
        self._closed = False

    def new_track(self) -> PacketTrack:
        track = PacketTrack(self)
        self.tracks.add(track)
        self.request_keyframe()
        if self._last is not None:
            self.submit(self._last)  # a joining viewer gets a picture at once
        return track

    def remove_track(self, track: PacketTrack) -> None:
        self.tracks.discard(track)

    def request_keyframe(self) -> None:
        self._keyframe = True

    def submit(self, frame: np.ndarray) -> None:
        """Called on the loop with every handed-over frame."""
        if self._closed or not self.tracks:
            return
        now = time.monotonic()
        if frame is self._last and not self._keyframe:
            if self._same >= AFTER_CHANGE and now - self._last_t < HEARTBEAT_S:
                self.skipped += 1
                return
        if self._task is not None and not self._task.done():
            self._pending = frame
            return
        self._task = asyncio.get_running_loop().create_task(self._run(frame))

    async def _run(self, frame: np.ndarray | None) -> None:
        loop = asyncio.get_running_loop()
        while frame is not None and not self._closed:
            # A change after a still picture (typically a control, idle motion off): its first
            # repeat goes out at once instead of at the next slot, because receivers such as
            # aiortc complete a frame only when the next one starts. It is one of the
            # AFTER_CHANGE repeats, not an extra; a moving picture (each slot new) never has it.
            repeat_now = frame is not self._last and self._same >= AFTER_CHANGE
            key, self._keyframe = self._keyframe, False
            now = time.monotonic()
            if self._t0 is None:
                self._t0 = now
            pts = max(int((now - self._t0) * VIDEO_CLOCK_RATE), self._last_pts + 1)
            self._last_pts = pts
            try:
                data, cpu_s = await loop.run_in_executor(_POOL, self._encode, frame, key, pts)
            except Exception as exc:  # noqa: BLE001 - one bad encode must not end the stream
                log.warning("session encode failed: %r", exc)
                self._ctx = None
                self._keyframe = True
                data, cpu_s = b"", 0.0
            if self.on_encode is not None:
                self.on_encode(cpu_s)
            self._same = self._same + 1 if frame is self._last else 0
            self._last, self._last_t = frame, time.monotonic()
            if data:
                self.encodes += 1
                packet = av.Packet(data)
                packet.pts = pts
                packet.time_base = VIDEO_TIME_BASE
                for track in list(self.tracks):
                    track.push_packet(packet)
            frame, self._pending = self._pending, None
            if frame is None and repeat_now and data:
                frame = self._last
                await asyncio.sleep(0)  # the change's packets go out before the repeat's encode

    def _encode(self, frame: np.ndarray, keyframe: bool, pts: int) -> tuple[bytes, float]:
        """On an encoder thread: RGB -> I420 -> one compressed frame, and the thread's CPU
        time for it (wall time would also count waiting for the GIL and for other work)."""
        t = time.thread_time()
        if self._ctx is None:
            self._ctx = _context(self.codec, self.size, self.fps)
            keyframe = True
        vf = rgb_to_i420(frame)
        vf.pts = pts
        vf.time_base = VIDEO_TIME_BASE
        vf.pict_type = av.video.frame.PictureType.I if keyframe else \
            av.video.frame.PictureType.NONE
        data = b"".join(bytes(p) for p in self._ctx.encode(vf))
        return data, time.thread_time() - t

    def close(self) -> None:
        self._closed = True
        self._pending = None
        for track in list(self.tracks):
            track.stop()

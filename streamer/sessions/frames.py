"""Session frames for `subscribe_frames`: one encode per frame per distinct stream, shared by
every socket that asked for it, on one pool that serves sessions in turn.

- A *stream* is one (format, quality, fps) of one session. However many sockets subscribe to
  it, each frame is encoded once and the same bytes go to all of them (fan-out).
- The encoder pool is shared by all sessions of an app, so it is served round-robin: each
  session has its own small queue (at most one waiting job per stream, newest frame wins) and
  the next free worker takes the oldest job of the session served least recently, and no
  session may hold every worker at once: with a slow encode in flight for a session with many
  streams, another session's frame still starts at once. A session with many streams or
  subscribers cannot take more than its share from another.

The encoders release the GIL, so a small dedicated pool keeps encodes from competing with the
engine thread's queue and from blocking the loop.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import struct
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from streamer.imaging import encode_image

log = logging.getLogger(__name__)

ENCODE_WORKERS = 2
MAX_QUEUED_PER_SESSION = 32  # a backstop: each stream queues at most one job anyway


# subscribe_frames {"timestamps": true}: each binary frame starts with its presentation time,
# a little-endian float64 of milliseconds on the session's media clock, then the image.
PTS_HEADER = struct.Struct("<d")


class FrameSink(Protocol):
    """A subscriber (a socket, ws.py): takes the encoded bytes and the frame's presentation
    time (ms, the speech clock); keeps only the newest."""

    def deliver_frame(self, data: bytes, pts_ms: float) -> None: ...


@dataclass(frozen=True)
class StreamKey:
    format: str  # "jpeg" | "webp" (the imaging names)
    quality: int
    fps: float


@dataclass(eq=False)
class EncodeStream:
    """One distinct stream of one session: its subscribers and its encode state."""

    key: StreamKey
    subscribers: set[FrameSink] = field(default_factory=set)
    last_sent: float = -1e9
    job: "EncodeJob | None" = None  # queued or running; at most one per stream

    def due(self, now: float) -> bool:
        # 10% slack so a 25 fps subscription on a 25 fps session never skips every other frame.
        return now - self.last_sent >= 0.9 / self.key.fps


@dataclass(eq=False)
class EncodeJob:
    owner: str  # the session id: the unit of fairness
    stream: EncodeStream
    frame: np.ndarray
    pts_ms: float = 0.0  # the frame's presentation time, for subscribers that asked for it
    started: bool = False


class FairEncoder:
    """A bounded encode pool shared by sessions and served round-robin (see the module doc).

    Lives on one event loop (the app's); all methods are called from it."""

    def __init__(self, workers: int = ENCODE_WORKERS,
                 encode: Callable[[np.ndarray, str, int], bytes] = encode_image) -> None:
        self._workers = workers
        self._encode = encode
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None
        self._queues: dict[str, deque[EncodeJob]] = {}  # only owners with queued jobs
        self._served: dict[str, int] = {}  # owner -> serial of its latest started job
        self._serial = 0
        self._running = 0
        self._running_by: dict[str, int] = {}
        # One worker always stays open to the other sessions (the first frame of one that
        # just arrived must not wait behind a hog's encodes).
        self._per_owner = max(1, workers - 1)
        self.encodes = 0  # finished encodes, all sessions (tests and /metrics read it)
        self.on_encoded: Callable[[], None] | None = None  # e.g. a Prometheus counter's inc

    def submit(self, job: EncodeJob) -> None:
        q = self._queues.setdefault(job.owner, deque())
        if len(q) >= MAX_QUEUED_PER_SESSION:
            dropped = q.popleft()  # the oldest: newer frames matter more
            if dropped.stream.job is dropped:
                dropped.stream.job = None
        q.append(job)
        self._pump()

    def forget(self, owner: str) -> None:
        """A session ended: drop its queued jobs (running ones finish and deliver to nobody)."""
        for job in self._queues.pop(owner, ()):
            job.stream.job = None
        self._served.pop(owner, None)

    def cancel(self, job: EncodeJob) -> None:
        """Drop a job that has not started (its stream lost its last subscriber)."""
        q = self._queues.get(job.owner)
        if q is not None and not job.started and job in q:
            q.remove(job)
            if not q:
                del self._queues[job.owner]

    def queued(self, owner: str) -> int:
        return len(self._queues.get(owner, ()))

    def _pump(self) -> None:
        while self._running < self._workers and self._queues:
            # Round-robin that also treats newcomers fairly: the owner served least recently
            # (never served: first) goes next; sessions are few (--max-sessions), so a scan.
            ready = [o for o in self._queues if self._running_by.get(o, 0) < self._per_owner]
            if not ready:
                return
            owner = min(ready, key=lambda o: self._served.get(o, -1))
            q = self._queues[owner]
            job = q.popleft()
            if not q:
                del self._queues[owner]
            self._serial += 1
            self._served[owner] = self._serial
            self._start(job)

    def _start(self, job: EncodeJob) -> None:
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(self._workers,
                                                               thread_name_prefix="frame-encode")
        job.started = True
        self._running += 1
        self._running_by[job.owner] = self._running_by.get(job.owner, 0) + 1
        key = job.stream.key
        fut = asyncio.get_running_loop().run_in_executor(self._pool, self._encode, job.frame,
                                                         key.format, key.quality)
        fut.add_done_callback(lambda f: self._finished(job, f))

    def _finished(self, job: EncodeJob, fut: asyncio.Future) -> None:
        self._running -= 1
        left = self._running_by.get(job.owner, 1) - 1
        if left > 0:
            self._running_by[job.owner] = left
        else:
            self._running_by.pop(job.owner, None)
        stream = job.stream
        if stream.job is job:
            stream.job = None
        try:
            data = fut.result()
        except asyncio.CancelledError:
            data = None
        except Exception as exc:  # noqa: BLE001 - one bad frame must not stop the stream
            log.warning("frame encode failed: %r", exc)
            data = None
        if data is not None:
            self.encodes += 1
            if self.on_encoded is not None:
                self.on_encoded()
            for sink in list(stream.subscribers):
                sink.deliver_frame(data, job.pts_ms)
        self._pump()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None


class SessionFrames:
    """One session's frame subscriptions, grouped into streams by (format, quality, fps)."""

    def __init__(self, owner: str = "", encoder: FairEncoder | None = None) -> None:
        self.owner = owner
        self.encoder = encoder if encoder is not None else FairEncoder(1)
        self.streams: dict[StreamKey, EncodeStream] = {}
        self._by_sink: dict[FrameSink, EncodeStream] = {}
        self.encodes_submitted = 0  # encode jobs this session started (one per stream per frame)

    def subscribe(self, sink: FrameSink, key: StreamKey) -> None:
        self.unsubscribe(sink)
        stream = self.streams.get(key)
        if stream is None:
            stream = self.streams[key] = EncodeStream(key)
        stream.subscribers.add(sink)
        self._by_sink[sink] = stream

    def unsubscribe(self, sink: FrameSink) -> None:
        stream = self._by_sink.pop(sink, None)
        if stream is None:
            return
        stream.subscribers.discard(sink)
        if not stream.subscribers:
            del self.streams[stream.key]
            if stream.job is not None:
                self.encoder.cancel(stream.job)  # a running one finishes for nobody
                stream.job = None

    def subscribed(self, sink: FrameSink) -> bool:
        return sink in self._by_sink

    @property
    def subscriptions(self) -> int:
        return len(self._by_sink)

    def wants_frames(self) -> bool:
        return bool(self._by_sink)

    def on_frame(self, frame: np.ndarray, now: float, pts_ms: float = 0.0) -> None:
        for stream in list(self.streams.values()):
            if not stream.due(now):
                continue
            job = stream.job
            if job is not None and not job.started:
                job.frame = frame  # still waiting its turn: it takes the newest frame instead
                job.pts_ms = pts_ms
                stream.last_sent = now
                continue
            if job is not None:
                continue  # one encode in flight per stream; this frame is skipped
            stream.last_sent = now
            stream.job = EncodeJob(self.owner, stream, frame, pts_ms)
            self.encodes_submitted += 1
            self.encoder.submit(stream.job)

    def close(self) -> None:
        self.encoder.forget(self.owner)
        for stream in self.streams.values():
            stream.subscribers.clear()
        self.streams.clear()
        self._by_sink.clear()

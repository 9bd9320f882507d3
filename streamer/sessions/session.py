"""One session: plain state shared by the scheduler (which renders it), the WebSocket
handler (which steers it) and its viewers (which receive its frames).

The registry (registry.py) creates, limits and expires sessions; this module only knows
one session and the two things attached to it, typed by the protocols below.
"""
from __future__ import annotations

import random
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Protocol

import numpy as np

from engine.api import Source
from engine.motion import IdleState, Motion
from streamer.sessions import events
from streamer.sessions.frames import SessionFrames
from streamer.sessions.idle import IdleAnimator
from streamer.sessions.metrics import SessionMetrics
from streamer.sessions.motion_state import MotionState
from streamer.sessions.video import SessionEncoder
from streamer.sessions.speech import SpeechPlayer
from streamer.sessions.speech_lipsync import LipSync


class SessionSocket(Protocol):
    """What a session needs from a connected WebSocket (implemented in ws.py)."""

    def send_event(self, event: dict) -> None: ...
    def deliver_frame(self, data: bytes) -> None: ...
    async def close(self, code: int, final: dict | None = None) -> None: ...


class SessionViewer(Protocol):
    """One WebRTC peer watching a session (implemented in webrtc.py); its track is fed by
    the session's shared encoder (``Session.video``), not frame by frame here."""

    async def close(self) -> None: ...


@dataclass
class Session:
    id: str
    key: str  # content-hash key of the portrait in the SourceCache
    source: Source
    fps: int
    size: int
    codec: str
    idle_enabled: bool
    created: float = field(default_factory=time.monotonic)
    last_activity: float = field(default_factory=time.monotonic)
    motion: MotionState = field(default_factory=MotionState)
    idle: IdleAnimator = field(default_factory=lambda: IdleAnimator(random.Random()))
    seq: int = 0
    frames_rendered: int = 0
    frames_dropped: int = 0
    next_slot: int | None = None  # index on the scheduler's grid of 1/fps slots; None: asap
    last_motion: Motion | None = None
    last_frame: np.ndarray | None = None
    viewers: set[SessionViewer] = field(default_factory=set)
    sockets: set[SessionSocket] = field(default_factory=set)
    pending_controls: deque = field(default_factory=lambda: deque(maxlen=256))
    control_latency_ms: float | None = None
    frame_ms: deque = field(default_factory=lambda: deque(maxlen=64))
    handovers: deque = field(default_factory=lambda: deque(maxlen=256))
    last_error_at: float = 0.0
    closed: bool = False
    expedite: bool = False  # render an extra frame now (a control just arrived)
    takes_slot: bool = False  # ... in place of the imminent regular slot
    in_flight: int = 0  # renders of this session submitted and not yet handed over
    last_planned: float = float("-inf")  # monotonic time the newest render was submitted
    # The scheduler's expedite(session): called after every accepted control.
    on_control: Callable[[Session], None] | None = None
    owner: str | None = None  # the API key id that created it (per-key caps); None: keyless
    # subscribe_frames streams: one encode per (format, quality, fps), shared by its sockets
    frames: SessionFrames = field(default_factory=SessionFrames)
    rate: int = 0  # the fps the scheduler runs it at now (below fps when the server is loaded)
    first_frame_at: float | None = None
    video: SessionEncoder | None = None  # one encode per frame for all WebRTC viewers
    # Speech: the audio timeline (speech.py) and the mouth it puts in frames (speech_lipsync.py).
    speech: SpeechPlayer = field(init=False)
    lipsync: LipSync = field(default_factory=LipSync)

    def __post_init__(self) -> None:
        if self.rate <= 0:
            self.rate = self.fps
        if self.video is None:
            self.video = SessionEncoder(self.codec, self.size, self.fps)
        self.speech = SpeechPlayer(on_event=self._broadcast)

    def frame_pts_ms(self) -> float:
        """The newest frame's presentation time on the speech timeline (ms), the clock of
        speech_started.pts_ms: a WebSocket client shows the frame when its own playback of
        the session's audio reaches this time."""
        return round((self.lipsync.last_pts - self.speech.t0) * 1000.0, 1)

    def _broadcast(self, event: dict) -> None:
        for s in list(self.sockets):
            s.send_event(event)

    # --- steering (called by the WebSocket handler) ---
    def touch(self, now: float | None = None) -> None:
        self.last_activity = time.monotonic() if now is None else now

    def set_target(self, emotions: dict[str, float] | None, controls: dict[str, float],
                   transition_ms: int) -> None:
        now = time.monotonic()
        self.motion.set_target(now, emotions, controls, transition_ms)
        self.seq += 1
        self.pending_controls.append(now)
        if self.on_control is not None:
            self.on_control(self)

    def set_idle(self, enabled: bool) -> None:
        self.idle_enabled = enabled
        self.seq += 1
        self.pending_controls.append(time.monotonic())
        if self.on_control is not None:
            self.on_control(self)

    def state_event(self) -> dict:
        return events.state(self.seq, self.motion.target_dict(), self.motion.transition_ms,
                            self.idle_enabled)

    # --- rendering (called by the scheduler) ---
    def wants_frames(self) -> bool:
        return bool(self.viewers) or self.frames.wants_frames() or self.frames_rendered == 0

    def motion_at(self, now: float) -> Motion:
        self.motion.advance(now)
        idle = self.idle.state(now) if self.idle_enabled else IdleState()
        return self.lipsync.apply(self.motion.motion(idle), self.speech, now)

    def hand_over(self, frame: np.ndarray, now: float, stamps: list[float],
                  metrics: SessionMetrics) -> None:
        first = self.frames_rendered == 0
        if first:
            self.first_frame_at = now
        self.lipsync.handed_over(self.last_motion, now)
        self.frames_rendered += 1
        self.last_frame = frame
        self.handovers.append(now)
        metrics.frames_rendered.inc()
        if self.viewers:
            self.video.submit(frame)
        if first:
            for s in list(self.sockets):
                s.send_event(events.ready())
        self.frames.on_frame(frame, now, self.frame_pts_ms())
        for t in stamps:
            metrics.control_to_frame_seconds.observe(now - t)
        if stamps:
            self.control_latency_ms = round((now - stamps[-1]) * 1000.0, 2)

    def report_error(self, code: str, message: str) -> None:
        now = time.monotonic()
        if now - self.last_error_at < 1.0:  # at most one render error event per second
            return
        self.last_error_at = now
        for s in list(self.sockets):
            s.send_event(events.error(code, message, None))

    # --- reporting ---
    def stats_event(self, now: float) -> dict:
        fps = sum(1 for t in self.handovers if now - t <= 1.0)
        render_ms = round(statistics.median(self.frame_ms), 2) if self.frame_ms else None
        return events.stats(fps, render_ms, self.frames_dropped, len(self.viewers),
                            self.frames_rendered, self.control_latency_ms)

    def describe(self, now: float) -> dict:
        self.motion.advance(now)
        return {"session_id": self.id, "fps": self.fps, "size": self.size, "codec": self.codec,
                "idle_motion": self.idle_enabled, "baseline": self.motion.baseline,
                "viewers": len(self.viewers),
                "ws_clients": len(self.sockets), "age_s": round(now - self.created, 3),
                "frames_rendered": self.frames_rendered, "motion": self.motion.current_dict(),
                "target": self.motion.target_dict()}

    def hello_event(self) -> dict:
        return events.hello(self.id, self.fps, self.size, self.codec, self.idle_enabled,
                            self.motion.baseline)

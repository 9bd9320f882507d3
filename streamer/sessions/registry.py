"""Sessions and their limits: creation (429 when full), idle/age expiry, stats, deletion.

A Session is plain state shared by the scheduler (which renders it), the WebSocket
handler (which steers it) and its viewers (which receive its frames).
"""
from __future__ import annotations

import asyncio
import logging
import random
import secrets
import statistics
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from engine.api import Source
from engine.motion import IdleState, Motion

from streamer.config import SessionLimits
from streamer.errors import ApiError
from streamer.runtime.source_cache import SourceCache
from streamer.sessions.idle import IdleAnimator
from streamer.sessions.metrics import SessionMetrics
from streamer.sessions.motion_state import MotionState

log = logging.getLogger(__name__)

CLOSE_SESSION_ENDED = 4000  # WebSocket close code when the session is deleted or expires
CLOSE_GOING_AWAY = 1001


class SessionSocket(Protocol):
    """What a session needs from a connected WebSocket (implemented in ws.py)."""

    def send_event(self, event: dict) -> None: ...
    def on_frame(self, frame: np.ndarray, now: float) -> None: ...
    def wants_frames(self) -> bool: ...
    async def close(self, code: int, final: dict | None = None) -> None: ...


class SessionViewer(Protocol):
    """One WebRTC peer watching a session (implemented in webrtc.py)."""

    def push_frame(self, frame: np.ndarray) -> None: ...
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
    viewers: set[Any] = field(default_factory=set)
    sockets: set[Any] = field(default_factory=set)
    pending_controls: deque = field(default_factory=lambda: deque(maxlen=256))
    control_latency_ms: float | None = None
    frame_ms: deque = field(default_factory=lambda: deque(maxlen=64))
    handovers: deque = field(default_factory=lambda: deque(maxlen=256))
    last_error_at: float = 0.0
    closed: bool = False
    expedite: bool = False  # render an extra frame now (a control just arrived)
    in_flight: int = 0  # renders of this session submitted and not yet handed over
    on_control: Any = None  # set by the scheduler: called after every accepted control

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
        return {"type": "state", "seq": self.seq, "target": self.motion.target_dict(),
                "transition_ms": self.motion.transition_ms, "idle_motion": self.idle_enabled}

    # --- rendering (called by the scheduler) ---
    def wants_frames(self) -> bool:
        return bool(self.viewers) or any(s.wants_frames() for s in self.sockets) \
            or self.frames_rendered == 0

    def motion_at(self, now: float) -> Motion:
        self.motion.advance(now)
        idle = self.idle.state(now) if self.idle_enabled else IdleState()
        return self.motion.motion(idle)

    def hand_over(self, frame: np.ndarray, now: float, stamps: list[float],
                  metrics: SessionMetrics) -> None:
        first = self.frames_rendered == 0
        self.frames_rendered += 1
        self.last_frame = frame
        self.handovers.append(now)
        metrics.frames_rendered.inc()
        for v in list(self.viewers):
            v.push_frame(frame)
        for s in list(self.sockets):
            if first:
                s.send_event({"type": "ready"})
            s.on_frame(frame, now)
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
            s.send_event({"type": "error", "code": code, "message": message,
                          "request_type": None})

    # --- reporting ---
    def stats_event(self, now: float) -> dict:
        fps = sum(1 for t in self.handovers if now - t <= 1.0)
        render_ms = round(statistics.median(self.frame_ms), 2) if self.frame_ms else None
        return {"type": "stats", "fps": fps, "render_ms": render_ms,
                "dropped": self.frames_dropped, "viewers": len(self.viewers),
                "frames": self.frames_rendered, "control_latency_ms": self.control_latency_ms}

    def describe(self, now: float) -> dict:
        self.motion.advance(now)
        return {"session_id": self.id, "fps": self.fps, "size": self.size, "codec": self.codec,
                "idle_motion": self.idle_enabled, "viewers": len(self.viewers),
                "ws_clients": len(self.sockets), "age_s": round(now - self.created, 3),
                "frames_rendered": self.frames_rendered, "motion": self.motion.current_dict(),
                "target": self.motion.target_dict()}


class SessionRegistry:
    """All sessions of one app. Owns limits and expiry; the scheduler reads ``active()``."""

    def __init__(self, limits: SessionLimits, cache: SourceCache, metrics: SessionMetrics) -> None:
        self.limits = limits
        self.cache = cache
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self._reserved = 0
        self._closing: set[asyncio.Task] = set()
        self.on_change: list[Any] = []  # callbacks run when a session is added (wake the loop)
        self.on_control: Any = None  # the scheduler's expedite(session)
        self._last_stats = 0.0

    def active(self) -> list[Session]:
        return [s for s in self.sessions.values() if not s.closed]

    def get(self, session_id: str) -> Session | None:
        s = self.sessions.get(session_id)
        return None if s is None or s.closed else s

    def reserve(self) -> None:
        """Take a slot before the (slow) portrait preparation; 429 when none is left."""
        if len(self.sessions) + self._reserved >= self.limits.max_sessions:
            raise ApiError(429, "too_many_sessions",
                           f"the server already runs {self.limits.max_sessions} sessions; "
                           "retry later or delete one",
                           {"Retry-After": str(self.retry_after_s())})
        self._reserved += 1

    def unreserve(self) -> None:
        self._reserved = max(0, self._reserved - 1)

    def retry_after_s(self) -> int:
        """Seconds until a slot frees on its own (idle or age expiry), capped at 60."""
        now = time.monotonic()
        waits = [self.limits.max_age_s - (now - s.created) for s in self.active()]
        waits += [self.limits.idle_timeout_s - (now - s.last_activity)
                  for s in self.active() if not s.sockets]
        best = min(waits) if waits else 1.0
        return int(max(1, min(60, round(best + 0.5))))

    def add(self, key: str, source: Source, fps: int, size: int, codec: str,
            idle_enabled: bool) -> Session:
        """Called with a reserved slot; pins the portrait so the cache never evicts it."""
        self.unreserve()
        sid = secrets.token_urlsafe(12)
        self.cache.pin(key)
        s = Session(id=sid, key=key, source=source, fps=fps, size=size, codec=codec,
                    idle_enabled=idle_enabled, on_control=self.on_control)
        self.sessions[sid] = s
        self.metrics.sessions_active.set(len(self.sessions))
        for cb in self.on_change:
            cb()
        return s

    async def close_session(self, s: Session, reason: str, code: int = CLOSE_SESSION_ENDED) -> None:
        """Close sockets (final 'closed' event + code), peers, then free the portrait."""
        if s.closed:
            return
        s.closed = True
        final = {"type": "closed", "reason": reason} if code == CLOSE_SESSION_ENDED else None
        closers = [sock.close(code, final) for sock in list(s.sockets)]
        closers += [v.close() for v in list(s.viewers)]
        if closers:
            results = await asyncio.gather(*closers, return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):
                    log.warning("closing session %s: %r", s.id, r)
        self.sessions.pop(s.id, None)
        self.metrics.sessions_active.set(len(self.sessions))
        self.cache.unpin(s.key)
        if not any(o.key == s.key for o in self.sessions.values()):
            self.cache.discard(s.key)  # frees engine memory unless another session uses it

    def expired(self, now: float) -> list[tuple[Session, str]]:
        out = []
        for s in self.active():
            if now - s.created > self.limits.max_age_s:
                out.append((s, "expired"))
            elif not s.sockets and now - s.last_activity > self.limits.idle_timeout_s:
                out.append((s, "expired"))
        return out

    def update_viewer_gauge(self) -> None:
        self.metrics.viewers.set(sum(len(s.viewers) for s in self.sessions.values()))

    async def housekeeping(self) -> None:
        """Every second: expire sessions, send stats to every socket."""
        while True:
            await asyncio.sleep(min(1.0, max(0.05, self.limits.idle_timeout_s / 4)))
            now = time.monotonic()
            for s, reason in self.expired(now):
                log.info("session %s %s", s.id, reason)
                await self.close_session(s, reason)
            self.update_viewer_gauge()
            if self._last_stats + 0.95 <= now:
                self._last_stats = now
                for s in self.active():
                    if s.sockets:
                        ev = s.stats_event(now)
                        for sock in list(s.sockets):
                            sock.send_event(ev)

    async def shutdown(self) -> None:
        """Server shutdown: every socket closes with 1001, every peer closes."""
        sessions = list(self.sessions.values())
        await asyncio.gather(*(self.close_session(s, "shutdown", CLOSE_GOING_AWAY)
                               for s in sessions), return_exceptions=True)

"""All sessions of one app and their limits: creation (429 when full, 503 server_busy when
the measured load leaves no headroom), idle/age expiry, stats, deletion. One session's state
is in session.py; the load measurement and its decisions in headroom.py."""
from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Callable

from engine.api import Source
from streamer.config import SessionLimits
from streamer.errors import ApiError
from streamer.runtime.source_cache import SourceCache
from streamer.sessions import events
from streamer.sessions.frames import FairEncoder, SessionFrames
from streamer.sessions.headroom import WINDOW_S, Headroom
from streamer.sessions.metrics import SessionMetrics
from streamer.sessions.motion_state import MotionState
from streamer.sessions.session import Session
from streamer.sessions.video import SessionEncoder

log = logging.getLogger(__name__)

CLOSE_SESSION_ENDED = 4000  # WebSocket close code when the session is deleted or expires
CLOSE_GOING_AWAY = 1001
BUSY_RETRY_MAX_S = 10  # past capacity the load may fall any moment (a session ends)


class SessionRegistry:
    """All sessions of one app. Owns limits and expiry; the scheduler reads ``active()``."""

    def __init__(self, limits: SessionLimits, cache: SourceCache, metrics: SessionMetrics) -> None:
        self.limits = limits
        self.cache = cache
        self.metrics = metrics
        self.sessions: dict[str, Session] = {}
        self._reserved = 0
        self._closing: set[asyncio.Task] = set()
        self.on_change: list[Callable[[], None]] = []  # run when a session is added (wake the loop)
        self.on_control: Callable[[Session], None] | None = None  # the scheduler's expedite(session)
        self._last_stats = 0.0
        # One encode pool for every session's subscribe_frames, served round-robin.
        self.encoder = FairEncoder()
        self.encoder.on_encoded = metrics.frame_encodes.inc
        self.headroom = Headroom(max_load=limits.max_load)

    def active(self) -> list[Session]:
        return [s for s in self.sessions.values() if not s.closed]

    def get(self, session_id: str) -> Session | None:
        s = self.sessions.get(session_id)
        return None if s is None or s.closed else s

    def check_capacity(self) -> None:
        """429 when no slot is left; takes nothing."""
        if len(self.sessions) + self._reserved >= self.limits.max_sessions:
            raise ApiError(429, "too_many_sessions",
                           f"the server already runs {self.limits.max_sessions} sessions; "
                           "retry later or delete one",
                           {"Retry-After": str(self.retry_after_s())})
        measured, pending = self.admission_counts(time.monotonic())
        if not self.headroom.admit(measured, pending):
            raise ApiError(503, "server_busy",
                           "the running sessions use the server's capacity; retry later",
                           {"Retry-After": str(min(BUSY_RETRY_MAX_S, self.retry_after_s()))})

    def reserve(self) -> None:
        """Take a slot for the (slow) portrait preparation, once the upload is complete and
        valid; 429 (no slot) or 503 server_busy (no measured headroom) otherwise."""
        self.check_capacity()
        self._reserved += 1

    def admission_counts(self, now: float) -> tuple[int, int]:
        """(sessions whose cost the load window has fully seen, sessions not seen yet or not
        rendering now + reservations): unseen ones are assumed to cost as much as the others."""
        measured = sum(1 for s in self.active() if s.first_frame_at is not None
                       and now - s.first_frame_at >= WINDOW_S and s.wants_frames())
        return measured, len(self.active()) - measured + self._reserved

    def health(self) -> dict:
        """The sessions part of /health: counts, the measured load and the rates in use."""
        now = time.monotonic()
        measured, pending = self.admission_counts(now)
        active = self.active()
        rates = [s.rate for s in active]
        return {"active": len(active), "measured": measured,
                "max_sessions": self.limits.max_sessions,
                "admitting": len(self.sessions) + self._reserved < self.limits.max_sessions
                and self.headroom.admit(measured, pending),
                **self.headroom.report(now),
                "min_rate_fps": min(rates) if rates else None}

    def _encoded(self, seconds: float) -> None:
        self.headroom.add_encode(seconds)
        self.metrics.encodes.inc()
        self.metrics.encode_seconds.observe(seconds)

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
            idle_enabled: bool, baseline: str = "neutral", owner: str | None = None) -> Session:
        """Called with a reserved slot; pins the portrait so the cache never evicts it."""
        self.unreserve()
        sid = secrets.token_urlsafe(12)
        self.cache.pin(key)
        s = Session(id=sid, key=key, source=source, fps=fps, size=size, codec=codec,
                    idle_enabled=idle_enabled, on_control=self.on_control,
                    motion=MotionState(baseline=baseline), owner=owner,
                    frames=SessionFrames(sid, self.encoder),
                    rate=Headroom.rate(fps, self.headroom.factor),
                    video=SessionEncoder(codec, size, fps, self._encoded))
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
        s.video.close()
        s.speech.close()
        final = events.closed(reason) if code == CLOSE_SESSION_ENDED else None
        closers = [sock.close(code, final) for sock in list(s.sockets)]
        closers += [v.close() for v in list(s.viewers)]
        if closers:
            results = await asyncio.gather(*closers, return_exceptions=True)
            for r in results:
                if isinstance(r, Exception):
                    log.warning("closing session %s: %r", s.id, r)
        s.frames.close()
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

    # --- WebSocket caps (checked by ws.py; None: allowed, else why not) ---
    def _of_owner(self, owner: str | None) -> list[Session]:
        return [s for s in self.active() if owner is not None and s.owner == owner]

    def socket_refusal(self, s: Session) -> str | None:
        lim = self.limits
        if len(s.sockets) >= lim.max_sockets_per_session:
            return f"this session already has {lim.max_sockets_per_session} WebSockets"
        if s.owner is not None and sum(len(o.sockets) for o in self._of_owner(s.owner)) \
                >= lim.max_sockets_per_key:
            return f"this API key's sessions already have {lim.max_sockets_per_key} WebSockets"
        if sum(len(o.sockets) for o in self.active()) >= lim.max_sockets:
            return f"the server already has {lim.max_sockets} session WebSockets"
        return None

    def subscription_refusal(self, s: Session) -> str | None:
        lim = self.limits
        if s.frames.subscriptions >= lim.max_subscriptions_per_session:
            return (f"this session already has {lim.max_subscriptions_per_session} frame "
                    "subscriptions; unsubscribe one or use WebRTC")
        if s.owner is not None and sum(o.frames.subscriptions for o in self._of_owner(s.owner)) \
                >= lim.max_subscriptions_per_key:
            return (f"this API key's sessions already have {lim.max_subscriptions_per_key} "
                    "frame subscriptions")
        return None

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
        self.encoder.close()

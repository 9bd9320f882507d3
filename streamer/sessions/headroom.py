"""How much of the frame budget live sessions use, and what to do about it.

Load is measured, not guessed from a count: every engine render (its time on the engine
thread; prepares are one-off and left out) and every session video encode (its thread's CPU
time, so waiting for the GIL or for other processes does not count) is recorded here,
and ``load()`` is the busy time per wall second over a short window, that is the work per
tick against the tick's frame budget, smoothed over the window's ticks:

    load = engine busy s/s + encode busy s/s / encode_parallelism

The engine runs one call at a time, so its share alone can never pass 1.0; encodes run on
several threads, so their share is spread over the cores left beside the engine thread.
A load near 1.0 means frames start to come late and slots are dropped.

Two decisions come from it:
- admission (``admit``): refuse a new session when the measured cost per session, times
  one more session, would pass ``max_load``, or while running sessions are already slowed;
- degradation (``adjust``): when the load passes HIGH_LOAD (or too many slots are
  dropped), every session's rate goes down by the same factor, aiming at TARGET_LOAD (never
  below MIN_FPS, or the session's own fps if lower); under LOW_LOAD it steps back up.
``max_load`` 0 turns both off.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections import deque
from dataclasses import dataclass, field

WINDOW_S = 2.0  # the smoothing window: 50 ticks at 25 fps
ADJUST_EVERY_S = 1.0  # the degradation step waits for the window to see the last change
HIGH_LOAD = 0.9  # above: slow every session down, to TARGET_LOAD
TARGET_LOAD = 0.8  # where a slow-down aims (the load scales with the rate)
LOW_LOAD = 0.65  # below (and the raised rate would stay at most TARGET_LOAD): speed back up
STEP = 0.9  # the rate moves at least (down) or at most (up) by this factor per adjustment
MIN_FPS = 15  # sessions never degrade below this (the bound)
DROP_OVERLOAD = 0.05  # dropped slots above this share also count as overload


def _default_parallelism() -> int:
    # Keep one core for the engine thread and the event loop; encodes share the rest.
    return max(1, (os.cpu_count() or 1) - 1)


@dataclass
class Headroom:
    max_load: float = 0.85  # admission bound; 0 turns measured admission and degradation off
    encode_parallelism: int = field(default_factory=_default_parallelism)
    factor: float = 1.0  # the rate factor every session runs at (1.0: full fps)
    _busy: deque = field(default_factory=lambda: deque(maxlen=20_000))  # (t, busy seconds)
    _slots: deque = field(default_factory=lambda: deque(maxlen=20_000))  # (t, rendered, dropped)
    _last_adjust: float = field(default_factory=time.monotonic)
    _started: float = field(default_factory=time.monotonic)
    # Encodes report from their own threads while /health and the scheduler read on the
    # event loop: a deque iterated while another thread appends raises, so every access
    # to the two windows holds this lock.
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    # --- measuring ---
    def add_engine(self, seconds: float) -> None:
        with self._lock:
            self._busy.append((time.monotonic(), seconds))

    def add_encode(self, seconds: float) -> None:
        with self._lock:
            self._busy.append((time.monotonic(), seconds / self.encode_parallelism))

    def add_slots(self, rendered: int, dropped: int) -> None:
        with self._lock:
            self._slots.append((time.monotonic(), rendered, dropped))

    def _trim(self, now: float) -> None:  # with the lock held
        for q in (self._busy, self._slots):
            while q and q[0][0] < now - WINDOW_S:
                q.popleft()

    def load(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            span = min(WINDOW_S, max(0.25, now - self._started))
            return sum(s for _, s in self._busy) / span

    def drop_share(self, now: float | None = None) -> float:
        now = time.monotonic() if now is None else now
        with self._lock:
            self._trim(now)
            rendered = sum(r for _, r, _ in self._slots)
            dropped = sum(d for _, _, d in self._slots)
        return dropped / (rendered + dropped) if rendered + dropped else 0.0

    # --- deciding ---
    @staticmethod
    def rate(fps: int, factor: float) -> int:
        """A session's effective fps at ``factor``: never below MIN_FPS (or its own fps)."""
        return max(min(fps, MIN_FPS), min(fps, int(math.floor(fps * factor + 1e-9))))

    def adjust(self, now: float | None = None) -> bool:
        """Called by the scheduler; returns True when ``factor`` changed."""
        now = time.monotonic() if now is None else now
        if self.max_load <= 0 or now - self._last_adjust < ADJUST_EVERY_S:
            return False
        load = self.load(now)
        old = self.factor
        if load > HIGH_LOAD or self.drop_share(now) > DROP_OVERLOAD:
            step = min(STEP, TARGET_LOAD / load) if load > 0 else STEP
            self.factor = max(MIN_FPS / 60.0, self.factor * step)
        elif load < LOW_LOAD and self.factor < 1.0:
            raised = min(1.0, self.factor / STEP)
            if load * raised / self.factor <= TARGET_LOAD:
                self.factor = raised
        if self.factor != old:
            self._last_adjust = now
            with self._lock:
                self._busy.clear()  # the old rate's measurements no longer apply
                self._slots.clear()
                self._started = now
            return True
        return False

    def admit(self, measured: int, pending: int) -> bool:
        """May one more session start? ``measured``: sessions whose frames the window saw;
        ``pending``: sessions admitted but not measured yet (including reservations)."""
        if self.max_load <= 0:
            return True
        if self.factor < 1.0:
            return False  # running sessions are already slowed down to protect them
        if measured == 0:
            return True  # nothing to measure yet: the fixed --max-sessions still applies
        per_session = self.load() / measured
        return per_session * (measured + pending + 1) <= self.max_load

    def report(self, now: float | None = None) -> dict:
        load = self.load(now)
        return {"load": round(load, 3), "headroom": round(max(0.0, 1.0 - load), 3),
                "max_load": self.max_load, "fps_factor": round(self.factor, 3),
                "dropped_share": round(self.drop_share(now), 4)}

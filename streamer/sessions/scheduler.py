"""The one render loop for all sessions.

Time is a grid of 1/fps slots per session, all anchored at one start time, so sessions
with the same fps fall due on the same ticks and render in ONE batched engine call (one
call per distinct output size). A tick takes its sessions' motion at the slot time and
hands the engine's frames over when they are ready.

Ticks are pipelined: up to MAX_IN_FLIGHT ticks may wait on the engine thread at once
(FIFO, so frames still arrive in order), so one slow render delays a frame instead of
dropping the next one. A slot that comes while that many are in flight is dropped and
counted: the loop renders the current slot, never a backlog.

Each session runs at its ``rate``: its own fps, or less when the measured load leaves no
headroom (headroom.py): then every session slows by the same factor, never below 15 fps,
and speeds back up when the load falls.
"""
from __future__ import annotations

import asyncio
import logging
import math
import os
import sys
import time
from collections import defaultdict
from dataclasses import dataclass, field

import cv2
import numpy as np

from engine.api import EngineError
from engine.motion import Motion

from streamer.runtime.engine_worker import EngineWorker, QueueFullError
from streamer.sessions.headroom import Headroom
from streamer.sessions.metrics import SessionMetrics
from streamer.sessions.registry import SessionRegistry
from streamer.sessions.session import Session

log = logging.getLogger(__name__)

# A session whose slot starts within this window joins the current tick's batch.
BATCH_WINDOW_S = 0.008
# Ticks submitted to the engine and not yet handed over; past it, slots are dropped.
MAX_IN_FLIGHT = 2

Job = tuple[Session, Motion, list[float]]

GIL_SWITCH_INTERVAL_S = 0.001
# How long stop() waits for the loop and its ticks before giving up on them (server shutdown).
STOP_TIMEOUT_S = 2.0


def tune_process_for_streaming() -> None:
    """Process-wide settings measured to matter for live sessions (bench/README.md):

    - The engine thread (numpy/OpenCV code that often drops and retakes the GIL) competes
      with the event loop and the encoder threads. At Python's default 5 ms switch interval
      a mesh render took 3-4x its standalone time inside the server; 1 ms restores most.
    - OpenCV's own worker pool oversubscribes small machines (engine + encoders + loop
      already want more cores than a 2-core box has) and made renders wait on stragglers.
    """
    if sys.getswitchinterval() > GIL_SWITCH_INTERVAL_S:
        sys.setswitchinterval(GIL_SWITCH_INTERVAL_S)
    if (os.cpu_count() or 1) <= 4:
        cv2.setNumThreads(1)


@dataclass
class _Tick:
    renders: dict[int, list[Job]] = field(default_factory=lambda: defaultdict(list))
    reused: list[tuple[Session, list[float]]] = field(default_factory=list)


class Scheduler:
    def __init__(self, registry: SessionRegistry, worker: EngineWorker,
                 metrics: SessionMetrics) -> None:
        self.registry = registry
        self.worker = worker
        self.metrics = metrics
        self.t0 = time.monotonic()
        self.ticks = 0
        self.in_flight = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._ticks: set[asyncio.Task] = set()
        self._stopping = False
        self.headroom: Headroom = registry.headroom
        registry.on_change.append(self.wake)
        registry.on_control = self.expedite

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        tune_process_for_streaming()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="session-scheduler")

    async def stop(self) -> None:
        # A flag as well as cancel(): on Python 3.11 a cancel that lands while the wake event
        # fires can be swallowed by the wait, and the loop would run on. Bounded either way.
        self._stopping = True
        self._wake.set()
        tasks = list(self._ticks) + ([self._task] if self._task is not None else [])
        for t in tasks:
            t.cancel()
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
            if pending:
                log.warning("scheduler: %d task(s) still running %.0f s after stop", len(pending),
                            STOP_TIMEOUT_S)
        self._task = None

    def _due_time(self, s: Session) -> float:
        return -math.inf if s.next_slot is None else self.t0 + s.next_slot / s.rate

    def _slot_now(self, s: Session, now: float) -> int:
        return math.floor((now + BATCH_WINDOW_S - self.t0) * s.rate + 1e-9)

    def _apply_rates(self, sessions: list[Session], now: float) -> None:
        """The load monitor changed the factor: move every session to its new rate, its slot
        grid re-anchored so that the next slot is the next one at the new rate."""
        for s in sessions:
            rate = Headroom.rate(s.fps, self.headroom.factor)
            if rate != s.rate:
                s.rate = rate
                if s.next_slot is not None:
                    s.next_slot = math.floor((now - self.t0) * rate + 1e-9) + 1
        log.info("session load %.2f: rate factor %.2f", self.headroom.load(now),
                 self.headroom.factor)

    def expedite(self, s: Session) -> None:
        """A control arrived: render a frame with it now rather than at the next slot.

        Spacing: never closer than half a period to the previous *render* submitted (reused
        frames cost nothing and do not count), so a control flood costs at most twice the fps.
        When the regular slot is less than half a period away, this render takes that slot's
        place (the slot is consumed) instead of adding a frame. The grid itself is untouched.
        Measured in bench/README.md: counting reused hand-overs and skipping near slots made
        about half the controls wait for the next slot (server side p50 ~35 ms at 25 fps)."""
        now = time.monotonic()
        if s.next_slot is None or now - s.last_planned < 0.5 / s.rate:
            return
        s.expedite = True
        s.takes_slot = self._due_time(s) - now < 0.5 / s.rate
        self._wake.set()

    async def _wait(self, timeout: float | None) -> None:
        self._wake.clear()
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=timeout)
        except asyncio.TimeoutError:
            pass

    async def _run(self) -> None:
        while not self._stopping:
            sessions = self.registry.active()
            now = time.monotonic()
            if not sessions:
                await self._wait(None)
                continue
            if self.headroom.adjust(now):
                self._apply_rates(sessions, now)
            next_due = min(-math.inf if s.expedite else self._due_time(s) for s in sessions)
            if next_due > now + BATCH_WINDOW_S:
                await self._wait(next_due - now)
                continue
            if self.in_flight >= MAX_IN_FLIGHT:
                await self._wait(None)  # a finishing tick wakes us; late slots count as dropped
                continue
            due = [s for s in sessions if s.expedite or self._due_time(s) <= now + BATCH_WINDOW_S]
            try:
                tick = self._plan(due, now)
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad tick
                log.exception("session tick failed")
                await asyncio.sleep(0.01)
                continue
            self.in_flight += 1
            task = asyncio.get_running_loop().create_task(self._finish(tick))
            self._ticks.add(task)
            task.add_done_callback(self._tick_done)

    def _tick_done(self, task: asyncio.Task) -> None:
        self._ticks.discard(task)
        self.in_flight -= 1
        self._wake.set()
        if not task.cancelled() and task.exception() is not None:
            log.error("session tick failed", exc_info=task.exception())

    def _plan(self, due: list[Session], now: float) -> _Tick:
        """Take each due session's slot and motion now; decide what to render or reuse."""
        self.ticks += 1
        tick = _Tick()
        for s in due:
            s.expedite = False
            slot_now = self._slot_now(s, now)
            if s.next_slot is None or slot_now >= s.next_slot:
                if s.next_slot is not None and slot_now > s.next_slot and s.wants_frames():
                    self._drop(s, slot_now - s.next_slot)  # slots that passed unrendered
                s.next_slot = slot_now + 1
            elif s.takes_slot:
                s.next_slot += 1  # a control's frame, early, in place of the imminent slot
            # else: an extra frame for a fresh control; the grid stays as it is
            s.takes_slot = False
            if not s.wants_frames():
                continue  # nobody watches: keep the clock, skip the work
            motion = s.motion_at(now)
            stamps = list(s.pending_controls)
            s.pending_controls.clear()
            if s.in_flight == 0 and s.last_frame is not None and motion == s.last_motion:
                tick.reused.append((s, stamps))  # nothing moved: the previous frame is exact
            else:
                s.in_flight += 1
                s.last_planned = now
                tick.renders[s.size].append((s, motion, stamps))
        return tick

    async def _finish(self, tick: _Tick) -> None:
        now = time.monotonic()
        for s, stamps in tick.reused:
            if not s.closed and s.last_frame is not None:
                s.hand_over(s.last_frame, now, stamps, self.metrics)
        if not tick.renders:
            return
        try:
            results = await asyncio.gather(*(self._render_group(size, group)
                                              for size, group in tick.renders.items()))
        finally:
            for group in tick.renders.values():
                for s, _, _ in group:
                    s.in_flight -= 1
        done = time.monotonic()
        for group_frames in results:
            for s, motion, stamps, frame in group_frames:
                if not s.closed:
                    s.last_motion = motion
                    s.hand_over(frame, done, stamps, self.metrics)
                    self.headroom.add_slots(1, 0)

    def _drop(self, s: Session, n: int) -> None:
        s.frames_dropped += n
        self.metrics.frames_dropped.inc(n)
        self.headroom.add_slots(0, n)

    async def _render_group(self, size: int, group: list[Job]
                            ) -> list[tuple[Session, Motion, list[float], np.ndarray]]:
        jobs = [(s.source, m) for s, m, _ in group]
        t = time.perf_counter()
        try:
            frames = await self.worker.render(jobs, mode="crop", size=size, priority=True)
        except QueueFullError:
            for s, _, stamps in group:  # the engine is saturated: this slot is lost
                self._drop(s, 1)
                s.pending_controls.extendleft(reversed(stamps))
            return []
        except Exception as exc:  # noqa: BLE001 - find which session broke the batch
            log.warning("batched render of %d sessions failed: %r", len(group), exc)
            return await self._render_one_by_one(size, group)
        elapsed = time.perf_counter() - t
        self.metrics.batch_size.observe(len(jobs))
        self.metrics.render_seconds.observe(elapsed)
        per_frame_ms = elapsed * 1000.0 / len(jobs)
        out = []
        for (s, m, stamps), frame in zip(group, frames):
            s.frame_ms.append(per_frame_ms)
            out.append((s, m, stamps, frame))
        return out

    async def _render_one_by_one(self, size: int, group: list[Job]
                                 ) -> list[tuple[Session, Motion, list[float], np.ndarray]]:
        out = []
        for s, m, stamps in group:
            t = time.perf_counter()
            try:
                (frame,) = await self.worker.render([(s.source, m)], mode="crop", size=size,
                                                    priority=True)
            except QueueFullError:
                self._drop(s, 1)
                continue
            except Exception as exc:  # noqa: BLE001
                code = exc.code if isinstance(exc, EngineError) else "render_failed"
                # The exception text may hold file paths: it goes to the log, not the client.
                log.warning("session %s: render failed: %r", s.id, exc)
                s.report_error(code, "the engine failed to render this session")
                self._drop(s, 1)
                continue
            s.frame_ms.append((time.perf_counter() - t) * 1000.0)
            out.append((s, m, stamps, frame))
        return out

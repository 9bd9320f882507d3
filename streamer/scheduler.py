"""The one render loop for all sessions.

Time is a grid of 1/fps slots per session, all anchored at one start time, so sessions
with the same fps fall due on the same ticks and render in ONE batched engine call (one
call per distinct output size). A slot whose tick comes too late is dropped and counted:
the loop always renders the current slot, never a backlog.
"""
from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import defaultdict

import numpy as np

from engine.api import EngineError
from engine.motion import Motion

from .engine_worker import EngineWorker, QueueFullError
from .sessions.metrics import SessionMetrics
from .sessions.registry import Session, SessionRegistry

log = logging.getLogger(__name__)

# A session whose slot starts within this window joins the current tick's batch.
BATCH_WINDOW_S = 0.008


class Scheduler:
    def __init__(self, registry: SessionRegistry, worker: EngineWorker,
                 metrics: SessionMetrics) -> None:
        self.registry = registry
        self.worker = worker
        self.metrics = metrics
        self.t0 = time.monotonic()
        self.ticks = 0
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        registry.on_change.append(self.wake)
        registry.on_control = self.expedite

    def wake(self) -> None:
        self._wake.set()

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="session-scheduler")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    def _due_time(self, s: Session) -> float:
        return -math.inf if s.next_slot is None else self.t0 + s.next_slot / s.fps

    def _slot_now(self, s: Session, now: float) -> int:
        return math.floor((now + BATCH_WINDOW_S - self.t0) * s.fps + 1e-9)

    def expedite(self, s: Session) -> None:
        """A control arrived: render one extra frame now rather than wait for the next slot,
        so the change shows up to a frame period sooner. Never when the regular slot is
        imminent, and never closer than half a period to the previous frame, so a control
        flood costs at most twice the fps. The slot grid itself is untouched."""
        now = time.monotonic()
        if s.next_slot is None or self._due_time(s) - now < 0.3 / s.fps:
            return
        if s.handovers and now - s.handovers[-1] < 0.5 / s.fps:
            return
        s.expedite = True
        self._wake.set()

    async def _run(self) -> None:
        while True:
            sessions = self.registry.active()
            now = time.monotonic()
            if not sessions:
                self._wake.clear()
                await self._wake.wait()
                continue
            next_due = min(-math.inf if s.expedite else self._due_time(s) for s in sessions)
            if next_due > now + BATCH_WINDOW_S:
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), timeout=next_due - now)
                except asyncio.TimeoutError:
                    pass
                continue
            due = [s for s in sessions if s.expedite or self._due_time(s) <= now + BATCH_WINDOW_S]
            try:
                await self.tick(due, now)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - the loop must outlive any one bad tick
                log.exception("session tick failed")
                await asyncio.sleep(0.01)

    async def tick(self, due: list[Session], now: float) -> None:
        self.ticks += 1
        renders: dict[int, list[tuple[Session, Motion, list[float]]]] = defaultdict(list)
        reused: list[tuple[Session, list[float]]] = []
        regular: list[Session] = []
        for s in due:
            s.expedite = False
            slot_now = self._slot_now(s, now)
            if s.next_slot is None or slot_now >= s.next_slot:
                if s.next_slot is not None and slot_now > s.next_slot and s.wants_frames():
                    self._drop(s, slot_now - s.next_slot)  # the loop came late: lost slots
                s.next_slot = slot_now
                regular.append(s)
            # else: an extra frame for a fresh control; the grid stays as it is
            if not s.wants_frames():
                continue  # nobody watches: keep the clock, skip the work
            motion = s.motion_at(now)
            stamps = list(s.pending_controls)
            s.pending_controls.clear()
            if s.last_frame is not None and motion == s.last_motion:
                reused.append((s, stamps))  # nothing moved: the previous frame is exact
            else:
                renders[s.size].append((s, motion, stamps))
        results = await asyncio.gather(*(self._render_group(size, group)
                                          for size, group in renders.items()))
        done = time.monotonic()
        for group_frames in results:
            for s, motion, stamps, frame in group_frames:
                if s.closed:
                    continue
                s.last_motion = motion
                s.hand_over(frame, done, stamps, self.metrics)
        for s, stamps in reused:
            if not s.closed and s.last_frame is not None:
                s.hand_over(s.last_frame, done, stamps, self.metrics)
        for s in regular:
            # The next slot strictly after now; the ones the render overran are dropped.
            nxt = math.floor((done - self.t0) * s.fps + 1e-9) + 1
            assert s.next_slot is not None
            if nxt > s.next_slot + 1 and s.wants_frames():
                self._drop(s, nxt - s.next_slot - 1)
            s.next_slot = max(nxt, s.next_slot + 1)

    def _drop(self, s: Session, n: int) -> None:
        s.frames_dropped += n
        self.metrics.frames_dropped.inc(n)

    async def _render_group(self, size: int, group: list[tuple[Session, Motion, list[float]]]
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

    async def _render_one_by_one(self, size: int, group: list[tuple[Session, Motion, list[float]]]
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
                s.report_error(code, f"the engine failed to render this session: {exc}"[:300])
                self._drop(s, 1)
                continue
            s.frame_ms.append((time.perf_counter() - t) * 1000.0)
            out.append((s, m, stamps, frame))
        return out

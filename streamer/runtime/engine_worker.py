"""The one place engine work runs: a single engine thread behind one bounded queue.

Two modes, same API: "thread" runs the engine in this process (the liveportrait engine on
CUDA); "process" is given a ``ProcessEngine`` (runtime/engine_process.py) whose work runs
in a child process, so the engine thread only waits on a pipe and the engine's numpy code
no longer competes for this process's GIL.

REST renders, prepares and the session scheduler's batched ticks all go through
``EngineWorker.call``. Work never runs on the event loop, and the queue never grows
past ``max_pending``: past it, callers get ``QueueFullError`` (503 + Retry-After).
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import threading
import time
from dataclasses import dataclass
from typing import Callable, Sequence, TypeVar

import numpy as np

from engine.api import Engine, Source
from engine.motion import Motion

from streamer.runtime.engine_process import ProcessEngine

T = TypeVar("T")


class QueueFullError(Exception):
    def __init__(self, retry_after_s: float) -> None:
        super().__init__("engine queue is full")
        self.retry_after_s = retry_after_s


@dataclass
class WorkerStats:
    pending: int = 0
    completed: int = 0
    rejected: int = 0


class EngineWorker:
    def __init__(self, engine: Engine, max_pending: int = 32) -> None:
        self.engine = engine
        self.max_pending = max_pending
        self.stats = WorkerStats()
        # One thread: engines are not required to be thread-safe, and a GPU serialises anyway.
        self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="engine")
        self._lock = threading.Lock()
        self._closed = False
        # Called on the engine thread after each prepare/render: (op, seconds, batch size).
        # The metrics module hooks in here so sessions' ticks are timed like REST renders.
        self.observer: Callable[[str, float, int], None] | None = None

    @property
    def mode(self) -> str:
        return "process" if isinstance(self.engine, ProcessEngine) else "thread"

    async def call(self, fn: Callable[..., T], *args: object, priority: bool = False) -> T:
        """Run fn(*args) on the engine thread. ``priority`` work (the session tick) may use
        a small reserve above max_pending so that REST floods cannot starve live sessions."""
        limit = self.max_pending + (4 if priority else 0)
        with self._lock:
            if self._closed:
                raise QueueFullError(1.0)
            if self.stats.pending >= limit:
                self.stats.rejected += 1
                raise QueueFullError(1.0)
            self.stats.pending += 1
        try:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, lambda: fn(*args))
        finally:
            with self._lock:
                self.stats.pending -= 1
                self.stats.completed += 1

    def _timed(self, op: str, batch: int, fn: Callable[[], T]) -> T:
        t0 = time.perf_counter()
        out = fn()
        if self.observer is not None:
            self.observer(op, time.perf_counter() - t0, batch)
        return out

    async def prepare(self, image: np.ndarray) -> Source:
        return await self.call(lambda: self._timed("prepare", 1, lambda: self.engine.prepare(image)))

    async def render(self, jobs: Sequence[tuple[Source, Motion]], mode: str = "crop",
                     size: int | None = None, priority: bool = False) -> list[np.ndarray]:
        jobs = list(jobs)
        return await self.call(
            lambda: self._timed("render", len(jobs),
                                lambda: self.engine.render(jobs, mode=mode, size=size)),
            priority=priority)

    def shutdown(self) -> None:
        with self._lock:
            self._closed = True
        self._executor.shutdown(wait=False, cancel_futures=True)
        if isinstance(self.engine, ProcessEngine):
            # Kills the child: a render in flight fails at once instead of holding exit up.
            self.engine.close()

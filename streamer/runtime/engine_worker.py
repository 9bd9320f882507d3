"""The one place engine work runs: a single engine thread behind one bounded priority queue.

Two modes, same API: "thread" runs the engine in this process (the liveportrait engine on
CUDA); "process" is given a ``ProcessEngine`` (runtime/engine_process.py) whose work runs
in a child process, so the engine thread only waits on a pipe and the engine's numpy code
no longer competes for this process's GIL.

REST renders, prepares and the session scheduler's batched ticks all go through
``EngineWorker.call``. Work never runs on the event loop, and the queue never grows
past ``max_pending``: past it, callers get ``QueueFullError`` (503 + Retry-After).
Session ticks (``priority=True``) run before any queued REST work; REST callers keep each
call short (one frame per call in /render/batch), so a tick never waits long.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import itertools
import queue
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


class _Job:
    """One queued engine call. Ordered by (rank, seq): priority work first, then FIFO."""

    __slots__ = ("rank", "seq", "fn", "future")

    def __init__(self, rank: int, seq: int, fn: Callable[[], object],
                 future: concurrent.futures.Future) -> None:
        self.rank, self.seq, self.fn, self.future = rank, seq, fn, future

    def __lt__(self, other: "_Job") -> bool:
        return (self.rank, self.seq) < (other.rank, other.seq)


_STOP_RANK = -1  # the shutdown marker sorts before everything


class EngineWorker:
    def __init__(self, engine: Engine, max_pending: int = 32) -> None:
        self.engine = engine
        self.max_pending = max_pending
        self.stats = WorkerStats()
        # One thread: engines are not required to be thread-safe, and a GPU serialises anyway.
        # A priority queue in front of it: a session tick (priority=True) waiting behind REST
        # work runs next, so a REST flood or a long batch cannot freeze live sessions.
        self._queue: queue.PriorityQueue[_Job] = queue.PriorityQueue()
        self._seq = itertools.count()
        self._thread = threading.Thread(target=self._run, name="engine", daemon=True)
        self._thread.start()
        self._lock = threading.Lock()
        self._closed = False
        # Called on the engine thread after each prepare/render: (op, seconds, batch size).
        # The metrics module hooks in here so sessions' ticks are timed like REST renders.
        self.observer: Callable[[str, float, int], None] | None = None

    @property
    def mode(self) -> str:
        return "process" if isinstance(self.engine, ProcessEngine) else "thread"

    def _run(self) -> None:
        while True:
            job = self._queue.get()
            if job.rank == _STOP_RANK:
                return
            if not job.future.set_running_or_notify_cancel():
                continue  # its caller gave up while it waited
            try:
                result = job.fn()
            except BaseException as exc:  # noqa: BLE001 - handed to the caller
                job.future.set_exception(exc)
            else:
                job.future.set_result(result)
            job = None  # type: ignore[assignment]  # drop big results before blocking again

    async def call(self, fn: Callable[..., T], *args: object, priority: bool = False) -> T:
        """Run fn(*args) on the engine thread. ``priority`` work (the session tick) runs before
        any queued REST work and may use a small reserve above max_pending, so that REST floods
        cannot starve live sessions."""
        limit = self.max_pending + (4 if priority else 0)
        with self._lock:
            if self._closed:
                raise QueueFullError(1.0)
            if self.stats.pending >= limit:
                self.stats.rejected += 1
                raise QueueFullError(1.0)
            self.stats.pending += 1
        try:
            future: concurrent.futures.Future = concurrent.futures.Future()
            self._queue.put(_Job(0 if priority else 1, next(self._seq), lambda: fn(*args), future))
            return await asyncio.wrap_future(future)
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
        while True:  # queued work fails now instead of running after shutdown
            try:
                job = self._queue.get_nowait()
            except queue.Empty:
                break
            job.future.cancel()
        self._queue.put(_Job(_STOP_RANK, -1, lambda: None, concurrent.futures.Future()))
        if isinstance(self.engine, ProcessEngine):
            # Kills the child: a render in flight fails at once instead of holding exit up.
            self.engine.close()

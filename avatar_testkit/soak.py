"""Soak cycles: create session -> stream over WebRTC to an aiortc client -> close, a few in
parallel, with one REST render per cycle; then count what is left behind.

Shared by bench/soak.py (the 300-cycle run and its RSS figures) and tests/test_soak.py.
The server runs in this process (the real app on a loopback port) so that its leftovers can be
counted directly: open file descriptors (/proc/self/fd), threads, asyncio tasks, live
RTCPeerConnection objects, sessions, cached and pinned portraits, output files, and resident
memory (/proc/self/status VmRSS, a figure for the bench). The baseline is taken after one
warm-up round (thread pools, codec and mediapipe state are created lazily on first use).
"""
from __future__ import annotations

import asyncio
import gc
import os
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from .pyclient import SessionClient, portrait_form
from .wait import WaitTimeout, wait_until

# Generous deadlines: they only matter when something is stuck.
FRAME_TIMEOUT_S = 30.0
SETTLE_TIMEOUT_S = 30.0


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


@dataclass
class Counts:
    fds: int
    threads: int  # threads outside the loop's default executor (a bounded, lazily grown pool)
    pool_threads: int  # default-executor threads (asyncio.to_thread), at most its max_workers
    tasks: int
    peers: int
    sessions: int
    cached: int
    pinned: int
    outputs: int
    rss_mb: float


def count(state: Any, out_dir: Path) -> Counts:
    from aiortc import RTCPeerConnection

    from streamer.sessions import registry_of

    gc.collect()
    peers = sum(1 for o in gc.get_objects() if isinstance(o, RTCPeerConnection))
    names = [t.name for t in threading.enumerate()]
    pool = sum(1 for n in names if n.startswith("asyncio_"))
    return Counts(fds=len(os.listdir("/proc/self/fd")), threads=len(names) - pool, pool_threads=pool,
                  tasks=len(asyncio.all_tasks()), peers=peers,
                  sessions=len(registry_of(state).sessions), cached=len(state.cache),
                  pinned=len(state.cache.pinned_keys()),
                  outputs=sum(1 for p in out_dir.iterdir() if p.is_file()), rss_mb=rss_mb())


@dataclass
class SoakResult:
    cycles: int
    parallel: int
    seconds: float
    frames: int = 0
    failures: list[str] = field(default_factory=list)
    rss_by_cycle: dict[int, float] = field(default_factory=dict)
    baseline: Counts | None = None
    after: Counts | None = None
    stale_outputs: int = 0
    checks: dict[str, bool] = field(default_factory=dict)

    def growth_mb(self, start: int, end: int) -> float:
        return self.rss_by_cycle[end] - self.rss_by_cycle[start]

    def summary(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("rss_by_cycle",)}
        d["rss_points"] = {k: round(v, 1) for k, v in sorted(self.rss_by_cycle.items())
                           if k % max(1, self.cycles // 10) == 0 or k == self.cycles}
        return d


async def _cycle(http: aiohttp.ClientSession, url: str, image: bytes, stream_s: float,
                 size: int, min_frames: int) -> int:
    """One session's life; returns the video frames the client decoded. It streams for
    stream_s and, however slow the machine, until at least min_frames frames arrived."""
    client = await SessionClient.create(http, url, image, fps=25, size=size)
    frames = 0
    try:
        await client.connect()
        await client.start_video()
        await client.next_video_frame(timeout=FRAME_TIMEOUT_S)
        await asyncio.sleep(stream_s)  # the stream's length (what a soak cycle is), not a wait
        frames = 1 + client.drain_video()
        while frames < min_frames:  # frames keep coming
            await client.next_video_frame(timeout=FRAME_TIMEOUT_S)
            frames += 1
        async with http.post(url + "/render", data=portrait_form(image, emotion="happy"),
                             headers={"Accept": "application/json"}) as r:
            await r.read()
            if r.status != 200:
                raise RuntimeError(f"/render -> {r.status}")
    finally:
        await client.close()
        async with http.delete(f"{url}/sessions/{client.session_id}") as r:
            if r.status not in (200, 404):
                raise RuntimeError(f"DELETE session -> {r.status}")
    return frames


async def _settle(state: Any, out_dir: Path, base: Counts, timeout: float) -> Counts:
    """Closing peers and sockets finishes in background tasks: wait until the counts are back
    at the baseline (or the deadline passed; the checks then say what is left)."""
    last: list[Counts] = []

    def back_to_baseline() -> bool:
        c = count(state, out_dir)
        last[:] = [c]
        return (c.fds <= base.fds and c.threads <= base.threads and c.tasks <= base.tasks
                and c.peers <= base.peers)

    try:
        await wait_until(back_to_baseline, timeout=timeout, interval=0.5)
    except WaitTimeout:
        pass
    return last[0]


def _stale(out_dir: Path, ttl_s: float, sweep_s: float) -> int:
    now = time.time()
    return sum(1 for p in out_dir.iterdir()
               if p.is_file() and now - p.stat().st_mtime > ttl_s + sweep_s + 1)


async def run_soak(cycles: int, parallel: int = 3, stream_s: float = 2.0, size: int = 256,
                   output_ttl_s: float = 5.0, engine: Any = None, progress: bool = False,
                   min_frames: int = 1) -> SoakResult:
    from aiohttp import web

    from streamer.app import create_app
    from streamer.app_state import STATE_KEY
    from streamer.config import ServerConfig, SessionLimits
    from streamer.samples import sample_portrait_bytes

    if engine is None:
        from engine.mesh import MeshEngine

        engine = MeshEngine()
    images = [sample_portrait_bytes("grace_hopper"), sample_portrait_bytes("astronaut")]
    res = SoakResult(cycles, parallel, 0.0)
    with tempfile.TemporaryDirectory(prefix="lpa-soak-out-") as tmp:
        out_dir = Path(tmp)
        config = ServerConfig(host="127.0.0.1", port=0, output_dir=out_dir, output_ttl_s=output_ttl_s,
                              sessions=SessionLimits(max_sessions=max(8, parallel),
                                                    max_load=0.0))
        app = create_app(config, engine)
        state = app[STATE_KEY]
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        sweep = max(1.0, min(60.0, output_ttl_s / 4))  # the output store's expiry period
        try:
            async with aiohttp.ClientSession() as http:
                # warm-up round: lazily created pools and codecs belong to the baseline
                await asyncio.gather(*(_cycle(http, url, images[i % 2], 0.5, size, 1)
                                       for i in range(parallel)))
                # Closing peers finish in background tasks; the baseline is taken after they
                # had a moment (taken too early it would only make the checks more lenient).
                await asyncio.sleep(1.0)
                res.baseline = count(state, out_dir)
                res.rss_by_cycle[0] = res.baseline.rss_mb
                done = 0
                t0 = time.monotonic()
                while done < cycles:
                    n = min(parallel, cycles - done)
                    outcomes = await asyncio.gather(
                        *(_cycle(http, url, images[(done + i) % 2], stream_s, size, min_frames)
                          for i in range(n)),
                        return_exceptions=True)
                    for o in outcomes:
                        if isinstance(o, BaseException):
                            res.failures.append(f"{type(o).__name__}: {o}"[:200])
                        else:
                            res.frames += o
                    done += n
                    res.rss_by_cycle[done] = rss_mb()
                    if progress and done % 30 < parallel:
                        print(f"cycle {done}: rss {res.rss_by_cycle[done]:.1f} MB, "
                              f"{len(res.failures)} failures", flush=True)
                res.seconds = time.monotonic() - t0
            res.after = await _settle(state, out_dir, res.baseline, timeout=SETTLE_TIMEOUT_S)
            # outputs expire: every file older than the TTL plus one sweep goes (the sweeper
            # runs on the loop, so a busy machine only delays it; wait on the files, not a clock)
            try:
                await wait_until(lambda: _stale(out_dir, output_ttl_s, sweep) == 0,
                                 timeout=output_ttl_s + sweep + SETTLE_TIMEOUT_S, interval=0.2)
            except WaitTimeout:
                pass
            res.stale_outputs = _stale(out_dir, output_ttl_s, sweep)
        finally:
            await runner.cleanup()
    b, a = res.baseline, res.after
    assert b is not None and a is not None
    res.checks = {"no_failed_cycles": not res.failures,
                  "fds": a.fds <= b.fds, "threads": a.threads <= b.threads,
                  "pool_threads": a.pool_threads <= min(32, (os.cpu_count() or 1) + 4),
                  "tasks": a.tasks <= b.tasks, "peers": a.peers == 0,
                  "sessions": a.sessions == 0, "pinned": a.pinned == 0,
                  "cached": a.cached <= b.cached, "outputs_unexpired": res.stale_outputs == 0}
    return res

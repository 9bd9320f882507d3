"""Soak: cycles of create session -> stream over WebRTC to an aiortc client -> close, a few in parallel.

    python bench/soak.py --full             # 300 cycles, 3 in parallel, 2 s of video each
    python bench/soak.py --cycles 30        # the CI size (tests/test_soak.py)

The server runs in this process (the real app on a loopback port, mesh engine) so that its
leftovers can be counted directly: resident memory (/proc/self/status VmRSS), open file
descriptors (/proc/self/fd), threads, asyncio tasks, live RTCPeerConnection objects, sessions,
cached and pinned portraits, and output files. Each cycle also makes one REST render so the
output dir and its expiry are exercised (outputs live --output-ttl seconds).

The baseline is taken after one warm-up round (thread pools, codec and mediapipe state are
created lazily on first use), before the first counted cycle. Exit code 1 when a check fails.
"""
from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RSS_LIMIT_FULL_MB = 50.0  # growth allowed from cycle 50 to cycle 300


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
                 size: int) -> int:
    """One session's life; returns the video frames the client decoded."""
    from streamer.sessions.pyclient import SessionClient

    client = await SessionClient.create(http, url, image, fps=25, size=size)
    frames = 0
    try:
        await client.connect()
        await client.start_video()
        await client.next_video_frame(timeout=10)
        await asyncio.sleep(stream_s)
        frames = 1 + client.drain_video()
        async with http.post(url + "/render", data=_render_form(image),
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


def _render_form(image: bytes) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("source_image", image, filename="p.jpg", content_type="image/jpeg")
    form.add_field("emotion", "happy")
    return form


async def _settle(state: Any, out_dir: Path, base: Counts, timeout: float) -> Counts:
    """Closing peers and sockets finishes in background tasks: give them a moment."""
    deadline = time.monotonic() + timeout
    while True:
        c = count(state, out_dir)
        if (c.fds <= base.fds and c.threads <= base.threads and c.tasks <= base.tasks
                and c.peers <= base.peers) or time.monotonic() > deadline:
            return c
        await asyncio.sleep(0.5)


async def run_soak(cycles: int, parallel: int = 3, stream_s: float = 2.0, size: int = 256,
                   output_ttl_s: float = 5.0, engine: Any = None,
                   progress: bool = False) -> SoakResult:
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
                              sessions=SessionLimits(max_sessions=max(8, parallel)))
        app = create_app(config, engine)
        state = app[STATE_KEY]
        runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            async with aiohttp.ClientSession() as http:
                # warm-up round: lazily created pools and codecs belong to the baseline
                await asyncio.gather(*(_cycle(http, url, images[i % 2], 0.5, size)
                                       for i in range(parallel)))
                await asyncio.sleep(1.0)
                res.baseline = count(state, out_dir)
                res.rss_by_cycle[0] = res.baseline.rss_mb
                done = 0
                t0 = time.monotonic()
                while done < cycles:
                    n = min(parallel, cycles - done)
                    outcomes = await asyncio.gather(
                        *(_cycle(http, url, images[(done + i) % 2], stream_s, size) for i in range(n)),
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
            res.after = await _settle(state, out_dir, res.baseline, timeout=10.0)
            # every file left must be younger than the TTL plus one expiry sweep period
            await asyncio.sleep(min(output_ttl_s, 3.0))
            now = time.time()
            sweep = max(1.0, min(60.0, output_ttl_s / 4))
            res.stale_outputs = sum(1 for p in out_dir.iterdir()
                                    if p.is_file() and now - p.stat().st_mtime > output_ttl_s + sweep + 1)
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


def rss_check(res: SoakResult) -> tuple[int, int, float, float]:
    """(from cycle, to cycle, growth MB, limit MB). The full run checks cycle 50 -> 300 against
    50 MB. A shorter run checks its second half (its first cycles still warm up allocator
    arenas and codec state; the full run plateaus after about 60) against the proportionate
    limit, but never below 15 MB (RSS moves by several MB on its own)."""
    points = sorted(res.rss_by_cycle)
    target = 50 if res.cycles >= 300 else res.cycles / 2
    start = min(points, key=lambda c: abs(c - target))
    end = points[-1]
    limit = RSS_LIMIT_FULL_MB * max(1, end - start) / 250
    return start, end, res.growth_mb(start, end), max(limit, 15.0)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--full", action="store_true", help="300 cycles (the benchmark)")
    p.add_argument("--cycles", type=int, default=30)
    p.add_argument("--parallel", type=int, default=3)
    p.add_argument("--stream-seconds", type=float, default=2.0)
    p.add_argument("--size", type=int, default=256)
    args = p.parse_args()
    cycles = 300 if args.full else args.cycles
    if not 1 <= cycles <= 5000 or not 1 <= args.parallel <= 8:
        raise SystemExit("error: --cycles must be 1..5000 and --parallel 1..8")
    res = asyncio.run(run_soak(cycles, args.parallel, args.stream_seconds, args.size, progress=True))
    start, end, growth, limit = rss_check(res)
    res.checks["rss"] = growth < limit
    print(json.dumps(res.summary(), indent=1))
    print(f"RSS growth cycle {start} -> {end}: {growth:+.1f} MB (limit {limit:.0f} MB); "
          f"checks: {res.checks}")
    return 0 if all(res.checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

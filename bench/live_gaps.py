"""Live sessions while one heavy REST request runs: the longest gap between two frames.

    .venv/bin/python bench/live_gaps.py [--side 4000] [--emotions 16] [--mode full]
                                        [--sessions 2] [--fps 25] [--repeat 3] [--json]

The real server (create_app, the mesh engine in its child process as `serve` runs it on a
CPU) in this process on a loopback port. N sessions stream to real WebSocket clients
(subscribe_frames, JPEG). Then, `--repeat` times, one `/render/batch` with a side x side JPEG
(the astronaut, scaled up; a new file each time, so each one is decoded and prepared) and
`--emotions` emotions. The gap is measured on the server's side: the hand-over times the
scheduler records for each session (Session.handovers), from the request's start to its
end, boundaries included. Also reported: the engine child's RSS before, its peak (VmHWM),
and after; this process's peak.

Works unchanged against older code of this repository (used for the "before" column).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from avatar_testkit.pyclient import SessionClient  # noqa: E402
from engine.motion import EMOTIONS, Motion  # noqa: E402
from streamer.app import create_app  # noqa: E402
from streamer.app_state import STATE_KEY  # noqa: E402
from streamer.config import ServerConfig  # noqa: E402
from streamer.runtime.engine_factory import EngineRequest  # noqa: E402
from streamer.runtime.engine_process import ProcessEngine  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402


def _status_kb(pid: int | str, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def big_jpeg(side: int, quality: int) -> bytes:
    img = Image.open(io.BytesIO(sample_portrait_bytes("astronaut"))).convert("RGB")
    out = io.BytesIO()
    img.resize((side, side), Image.Resampling.BICUBIC).save(out, format="JPEG", quality=quality)
    return out.getvalue()


def max_gap(stamps: list[float], t0: float, t1: float) -> float:
    inside = sorted(t for t in stamps if t0 <= t <= t1)
    points = [t0, *inside, t1]
    return max(b - a for a, b in zip(points, points[1:]))


async def run(args: argparse.Namespace) -> dict:
    engine = ProcessEngine(EngineRequest("mesh", "cpu"))
    src = engine.prepare(np.asarray(Image.open(io.BytesIO(sample_portrait_bytes("grace_hopper"))).convert("RGB")))
    engine.render([(src, Motion.emotion("happy", 0.5))])  # warm-up, as `serve` does
    engine.release(src)
    tmp = tempfile.TemporaryDirectory(prefix="lpa-gaps-")
    config = ServerConfig(host="127.0.0.1", port=0, output_dir=Path(tmp.name) / "out")
    if args.max_source_pixels and hasattr(config, "max_source_pixels"):
        config.max_source_pixels = args.max_source_pixels
    app = create_app(config, engine)
    state = app[STATE_KEY]
    calls: list[tuple[float, str, int]] = []  # (seconds, op, batch) of every engine call
    observe = state.worker.observer

    def spy(op: str, seconds: float, batch: int) -> None:
        calls.append((seconds, op, batch))
        if observe is not None:
            observe(op, seconds, batch)

    state.worker.observer = spy
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    stamps: dict[str, list[float]] = {}
    stop = asyncio.Event()

    async def collect() -> None:
        # Copy the scheduler's hand-over times out of each session's bounded deque.
        while not stop.is_set():
            for s in state.sessions.active():
                seen = stamps.setdefault(s.id, [])
                last = seen[-1] if seen else -1.0
                seen.extend(t for t in list(s.handovers) if t > last)
            await asyncio.sleep(0.05)

    results = []
    async with aiohttp.ClientSession() as http:
        clients = []
        for i in range(args.sessions):
            photo = sample_portrait_bytes(("grace_hopper", "astronaut")[i % 2])
            c = await SessionClient.create(http, base, photo, fps=args.fps, size=256)
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 80, "fps": args.fps})
            clients.append(c)
        collector = asyncio.create_task(collect())
        while min((len(s.handovers) for s in state.sessions.active()), default=0) < 2 * args.fps:
            await asyncio.sleep(0.1)
        child = engine.pid
        rss_before = _status_kb(child, "VmRSS")
        for r in range(args.repeat):
            calls.clear()
            photo = big_jpeg(args.side, 92 - r)
            form = aiohttp.FormData()
            form.add_field("source_image", photo, filename="big.jpg", content_type="image/jpeg")
            form.add_field("emotions", ",".join((EMOTIONS * 4)[: args.emotions]))
            form.add_field("mode", args.mode)
            t0 = time.monotonic()
            async with http.post(base + "/render/batch", data=form) as resp:
                body = await resp.json()
                status = resp.status
            t1 = time.monotonic()
            await asyncio.sleep(0.3)  # let the collector copy the last stamps
            gaps = [max_gap(v, t0, t1) for v in stamps.values()]
            results.append({"status": status, "seconds": round(t1 - t0, 2), "max_gap_s": round(max(gaps), 3),
                            "photo_kb": len(photo) // 1024,
                            "longest_engine_calls_s": [f"{op}x{b} {sec:.3f}" for sec, op, b in sorted(calls)[-4:]],
                            "error": body.get("error", {}).get("code") if isinstance(body, dict) else None})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
        rss_peak = _status_kb(child, "VmHWM")
        await asyncio.sleep(1.0)
        rss_after = _status_kb(child, "VmRSS")
        stop.set()
        await collector
        for c in clients:
            await c.close()
    await runner.cleanup()
    tmp.cleanup()
    return {"side": args.side, "emotions": args.emotions, "mode": args.mode, "sessions": args.sessions,
            "fps": args.fps, "requests": results,
            "median_max_gap_s": statistics.median(r["max_gap_s"] for r in results),
            "child_rss_mb": {"before": rss_before // 1024, "peak": rss_peak // 1024, "after": rss_after // 1024},
            "server_peak_rss_mb": _status_kb("self", "VmHWM") // 1024}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--side", type=int, default=4000)
    p.add_argument("--emotions", type=int, default=16)
    p.add_argument("--mode", choices=("crop", "full"), default="full")
    p.add_argument("--sessions", type=int, default=2)
    p.add_argument("--fps", type=int, default=25)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--max-source-pixels", type=int, default=0, help="0: the server's default")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    out = asyncio.run(run(args))
    print(json.dumps(out) if args.json else json.dumps(out, indent=2))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""The GPU path end to end: the real server with the LivePortrait engine, N live sessions.

    python bench/gpu_sessions.py                              # CUDA: 16 sessions, 512x512, 25 fps
    python bench/gpu_sessions.py --device cpu --quick         # CPU smoke run: 1 session, 2 frames
    bench/gpu_sessions.sh                                     # on a lent GPU machine (wheels, see there)

Steps:
1. seed-1 synthetic checkpoints (the real networks' shapes) from the reference
   make_checkpoints.py (../shared/liveportrait_reference, ./shared/liveportrait_reference or
   --reference), or --checkpoints DIR;
2. `liveportrait-avatar serve --engine liveportrait --device DEV --weights-dir DIR` as its own
   process (measured admission off: the run measures how far the sessions hold);
3. N sessions (astronaut / Grace Hopper), one aiortc receiver each (decoding every frame);
   warm-up, then a measured window: fps per session, dropped slots, render ms per frame
   (the engine's batched render time / frames, from /metrics), the server's load (/health);
4. control-to-frame latency on one more session (idle motion off): aiortc receiver and server
   side (sessions_bench.py latency).

Prints one JSON line per step and a summary; exit code 1 when the server or a session failed.
"""
from __future__ import annotations

import argparse
import asyncio
import atexit
import importlib.util
import json
import re
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

BENCH = Path(__file__).resolve().parent
REPO = BENCH.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(BENCH))

import sessions_bench as sb  # noqa: E402
from avatar_testkit.pyclient import SessionClient  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402


QUICK_FPS = 1  # --quick on a CPU: a frame takes 20-60 s; a low rate keeps renders from piling up


def _reference(arg: str | None) -> Path:
    for c in ([Path(arg)] if arg else [REPO.parent / "shared" / "liveportrait_reference",
                                       REPO / "shared" / "liveportrait_reference"]):
        if (c / "make_checkpoints.py").is_file():
            return c
    raise SystemExit("reference folder with make_checkpoints.py not found; use --reference")


def _checkpoints(args: argparse.Namespace) -> Path:
    if args.checkpoints:
        return Path(args.checkpoints)
    ref = _reference(args.reference)
    out = Path(tempfile.mkdtemp(prefix="lp_ckpt_seed1_"))
    atexit.register(shutil.rmtree, out, True)  # about 520 MB
    spec = importlib.util.spec_from_file_location("make_checkpoints", ref / "make_checkpoints.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    t0 = time.perf_counter()
    mod.write_checkpoints(str(out), 1)
    print(json.dumps({"checkpoints": str(out), "seconds": round(time.perf_counter() - t0, 1)}),
          flush=True)
    return out


async def _metrics(http: aiohttp.ClientSession, base: str) -> dict[str, float]:
    async with http.get(base + "/metrics") as r:
        text = await r.text()
    out = {}
    for name in ('liveportrait_engine_seconds_sum{op="render"}',
                 'liveportrait_engine_seconds_count{op="render"}',
                 "liveportrait_engine_batch_size_sum", "liveportrait_session_encodes_total",
                 "liveportrait_session_encode_seconds_sum"):
        m = re.search("^" + re.escape(name) + r" (\S+)$", text, re.M)
        out[name.split("{")[0] + ("_render" if "{" in name else "")] = float(m.group(1)) if m else 0.0
    return out


async def sessions_run(server: sb.Server, n: int, size: int, seconds: float, warmup: float,
                       frame_timeout: float, fps: int = 25) -> dict:
    photos = [sample_portrait_bytes("astronaut"), sample_portrait_bytes("grace_hopper")]
    async with aiohttp.ClientSession() as http:
        clients = []
        for i in range(n):
            c = await SessionClient.create(http, server.base_url, photos[i % 2], fps=fps,
                                           size=size, codec="vp8")
            await c.connect()
            await c.start_video(timeout=frame_timeout)
            clients.append(c)
        first = time.monotonic()
        for c in clients:  # every session streams before anything is measured
            await c.next_video_frame(timeout=frame_timeout)
        first_frames_s = time.monotonic() - first
        await asyncio.sleep(warmup)
        m0 = await _metrics(http, server.base_url)
        f0 = [c.drain_video() for c in clients]
        del f0
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        counts = [c.drain_video() for c in clients]
        dt = time.monotonic() - t0
        m1 = await _metrics(http, server.base_url)
        async with http.get(server.base_url + "/health") as r:
            health = (await r.json()).get("sessions", {})
        stats = [sb._last_stats(c) for c in clients]
        for c in clients:
            await c.close()
            async with http.delete(f"{server.base_url}/sessions/{c.session_id}"):
                pass
    d = {k: m1[k] - m0[k] for k in m1}
    frames = d["liveportrait_engine_batch_size_sum"]
    fps = [x / dt for x in counts]
    return {"sessions": n, "size": size, "seconds": round(dt, 1),
            "first_frames_s": round(first_frames_s, 1),
            "fps_min": round(min(fps), 2), "fps_median": round(statistics.median(fps), 2),
            "dropped_total": sum(s.get("dropped", 0) for s in stats),
            "render_ms_per_frame": round(1000 * d["liveportrait_engine_seconds_sum_render"]
                                         / frames, 2) if frames else None,
            "render_calls": int(d["liveportrait_engine_seconds_count_render"]),
            "frames_per_render_call": round(frames / d["liveportrait_engine_seconds_count_render"],
                                            2) if d["liveportrait_engine_seconds_count_render"]
            else None,
            "encode_ms_per_frame": round(1000 * d["liveportrait_session_encode_seconds_sum"]
                                         / d["liveportrait_session_encodes_total"], 2)
            if d["liveportrait_session_encodes_total"] else None,
            "server_load": health.get("load"), "fps_factor": health.get("fps_factor")}


async def quick_latency(server: sb.Server, size: int, timeout: float) -> dict:
    """CPU: one control, server-side control-to-frame (a CPU render takes many seconds)."""
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, sample_portrait_bytes("astronaut"),
                                       fps=QUICK_FPS, size=size, idle_motion="false")
        await c.connect()
        await c.start_video(timeout=timeout)
        await c.next_video_frame(timeout=timeout)
        n = len(c.events)
        sent = time.monotonic()
        await c.send({"type": "set_emotion", "emotion": "happy", "intensity": 1.0,
                      "transition_ms": 0})
        latency = None
        while latency is None and time.monotonic() - sent < timeout:
            await asyncio.sleep(0.5)  # stats come once a second
            latency = next((e["control_latency_ms"] for e in c.events[n:]
                            if e.get("type") == "stats" and e.get("control_latency_ms") is not None),
                           None)
        got = time.monotonic() - sent
        await c.close()
    return {"server_control_to_frame_ms": latency, "client_wait_s": round(got, 1)}


async def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--device", default="cuda", choices=("cuda", "cpu"))
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--size", type=int, default=512)
    p.add_argument("--seconds", type=float, default=15.0)
    p.add_argument("--trials", type=int, default=30, help="control-to-frame trials")
    p.add_argument("--quick", action="store_true",
                   help="smoke run (CPU): 1 session at 256, 2 frames, one control")
    p.add_argument("--checkpoints", default=None)
    p.add_argument("--reference", default=None)
    p.add_argument("--server-log", type=Path, default=None)
    args = p.parse_args()
    ckpt = _checkpoints(args)
    engine_args = ("--engine", "liveportrait", "--device", args.device, "--weights-dir", str(ckpt),
                   "--no-download")
    t0 = time.perf_counter()
    server = await sb.Server.start(max_sessions=max(args.sessions, 2) + 1, engine_args=engine_args,
                                   start_timeout_s=900.0, log_to=args.server_log)
    print(json.dumps({"server_started_s": round(time.perf_counter() - t0, 1),
                      "device": args.device}), flush=True)
    try:
        if args.quick:
            # A CPU LivePortrait render takes seconds to a minute: frames, not rates.
            r = await sessions_run(server, 1, 256, seconds=1.0, warmup=0.0, frame_timeout=900.0,
                                   fps=QUICK_FPS)
            print(json.dumps({"sessions_run": r}), flush=True)
            print(json.dumps({"latency": await quick_latency(server, 256, 900.0)}), flush=True)
        else:
            r = await sessions_run(server, args.sessions, args.size, args.seconds, warmup=5.0,
                                   frame_timeout=120.0)
            print(json.dumps({"sessions_run": r}), flush=True)
            print(json.dumps({"latency": await sb.latency(server, args.trials)}), flush=True)
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))

"""WebSocket frame subscriptions: does a crowd of subscribers on one session starve another?

Session B has one JPEG subscriber; session A gets a crowd of WebP quality-100 subscribers,
either all on the same stream (shared encode: one encode per frame) or each on its own quality
(distinct streams: one encode per stream per frame, served in turn with B's). We report B's
delivered fps (median of 1-second windows) and its ratio to B alone in the same run, and
the server's encodes per second (liveportrait_session_frame_encodes_total).

The server runs as its own process with the caps raised so the crowd fits:

    python bench/ws_fanout_bench.py --seconds 8 --same 20 100 --distinct 16
    # the same against another checkout's server (e.g. the code before the shared encoder):
    git archive 2e8bac6 | tar -x -C /tmp/before
    python bench/ws_fanout_bench.py --server-root /tmp/before
"""
from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avatar_testkit.pyclient import SessionClient  # noqa: E402
from bench.sessions_bench import _free_port, _loadavg  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402


async def start_server(crowd: int, root: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    cmd = [sys.executable, "-m", "streamer.cli", "--log-level", "WARNING", "serve", "--engine",
           "mesh", "--host", "127.0.0.1", "--port", str(port)]
    if "--max-ws" in (root / "streamer" / "cli.py").read_text():  # older servers had no caps
        cmd += ["--max-ws-per-session", str(crowd + 2), "--max-subscriptions-per-session",
                str(crowd + 2), "--max-ws", str(crowd + 10)]
    # cwd first on sys.path: the server runs root's code (this venv's packages).
    proc = subprocess.Popen(cmd, cwd=root, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(3000):  # warm-up (numba, mediapipe) on a busy machine
            try:
                async with http.get(base + "/health") as r:
                    if r.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    proc.kill()
    raise RuntimeError("server did not start")


async def encodes(http: aiohttp.ClientSession, base: str) -> float | None:
    async with http.get(base + "/metrics") as r:
        text = await r.text()
    m = re.search(r"^liveportrait_session_frame_encodes_total (\S+)$", text, re.M)
    return float(m.group(1)) if m else None  # an older server without the counter


async def b_fps(b: SessionClient, seconds: float) -> list[int]:
    """Frames B receives in each 1-second window."""
    while not b.binary.empty():
        b.binary.get_nowait()
    counts = []
    for _ in range(int(seconds)):
        end = time.monotonic() + 1.0
        n = 0
        while (left := end - time.monotonic()) > 0:
            try:
                await asyncio.wait_for(b.binary.get(), left)
                n += 1
            except asyncio.TimeoutError:
                break
        counts.append(n)
    return counts


async def scenario(http, base, b, portrait, seconds, crowd, distinct) -> dict:
    hogs: list[SessionClient] = []
    a = None
    if crowd:
        a = await SessionClient.create(http, base, portrait, idle_motion="false")
        for i in range(crowd):
            c = SessionClient(http, {"ws_url": a.info["ws_url"]})
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "webp",
                          "quality": 100 - i if distinct else 100})
            hogs.append(c)
        await asyncio.sleep(2.0)  # let the crowd's streams start
    e0, t0 = await encodes(http, base), time.monotonic()
    counts = await b_fps(b, seconds)
    e1, t1 = await encodes(http, base), time.monotonic()
    for c in hogs:
        await c.close()
    if a is not None:
        async with http.delete(f"{base}/sessions/{a.session_id}"):
            pass
    return {"crowd": crowd, "distinct": distinct, "b_fps_median": statistics.median(counts),
            "encodes_per_s": "n/a" if e0 is None or e1 is None else round((e1 - e0) / (t1 - t0), 1)}


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=float, default=8.0)
    ap.add_argument("--same", type=int, nargs="*", default=[20, 100])
    ap.add_argument("--distinct", type=int, nargs="*", default=[16])
    ap.add_argument("--server-root", type=Path, default=ROOT,
                    help="the checkout whose server to run (default this one)")
    args = ap.parse_args()
    crowd = max(args.same + args.distinct + [1])
    proc, base = await start_server(crowd, args.server_root.resolve())
    try:
        # limit=0: the crowd needs more than aiohttp's default 100 pooled connections.
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as http:
            b = await SessionClient.create(http, base, sample_portrait_bytes("grace_hopper"),
                                           idle_motion="false")
            await b.connect()
            await b.send({"type": "subscribe_frames", "format": "jpeg", "quality": 70})
            await asyncio.sleep(2.0)
            rows = [await scenario(http, base, b, sample_portrait_bytes("astronaut"),
                                   args.seconds, 0, False)]
            for n in args.same:
                rows.append(await scenario(http, base, b, sample_portrait_bytes("astronaut"),
                                           args.seconds, n, False))
            for n in args.distinct:
                rows.append(await scenario(http, base, b, sample_portrait_bytes("astronaut"),
                                           args.seconds, n, True))
            await b.close()
    finally:
        proc.terminate()
        proc.wait(10)
    base_fps = rows[0]["b_fps_median"] or 1
    print(f"server: {args.server_root}; load average at end: {_loadavg()}")
    print("| session A's subscribers | B fps (median of 1 s) | B vs alone | encodes/s (all) |")
    print("| --- | --- | --- | --- |")
    for r in rows:
        what = "none (B alone)" if not r["crowd"] else \
            f"{r['crowd']} WebP q100, {'distinct qualities' if r['distinct'] else 'same stream'}"
        print(f"| {what} | {r['b_fps_median']:g} | {r['b_fps_median'] / base_fps:.2f} | "
              f"{r['encodes_per_s']} |")


if __name__ == "__main__":
    asyncio.run(main())

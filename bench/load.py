"""REST load: N concurrent clients (or an open-loop request rate) against /render for a fixed time.

    python bench/load.py --clients 1 2 4 8 64 --seconds 10            # closed loop, JSON + PNG
    python bench/load.py --rates 10 20 30 40 --seconds 10 --accept jpeg  # open loop: find capacity
    python bench/load.py --url http://127.0.0.1:8001 --clients 4      # an already running server

Without --url it starts its own server as a subprocess (mesh engine, loopback, a free port, a
temporary output dir) and stops it at the end. Traffic goes to 127.0.0.1 only; every run stops
by itself after --seconds per step. Reported per step: throughput of 200s, p50/p95/p99 latency of
admitted (200) requests, counts by status, and "bad": anything that is neither a 200 nor a
429/503 carrying Retry-After (connection errors included). Exit code 1 when a step had bad answers.
"""
from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# In-flight cap for the open-loop mode: the load generator itself stays bounded.
MAX_OPEN_LOOP_IN_FLIGHT = 256


@dataclass
class LoadResult:
    label: str
    seconds: float
    statuses: Counter = field(default_factory=Counter)
    latencies_ms: list[float] = field(default_factory=list)  # admitted (200) requests only
    bad: list[str] = field(default_factory=list)  # first few unexpected answers, for the report
    bad_count: int = 0
    skipped: int = 0  # open loop: sends skipped because the generator's own cap was reached

    @property
    def ok(self) -> int:
        return self.statuses.get(200, 0)

    @property
    def refused(self) -> int:
        return sum(n for s, n in self.statuses.items() if s in (429, 503))

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds if self.seconds > 0 else 0.0

    def pct(self, q: float) -> float:
        if not self.latencies_ms:
            return float("nan")
        xs = sorted(self.latencies_ms)
        return xs[min(len(xs) - 1, int(round(q / 100 * (len(xs) - 1))))]

    def summary(self) -> dict:
        return {"step": self.label, "seconds": round(self.seconds, 2), "ok": self.ok,
                "rps": round(self.throughput, 2), "refused": self.refused, "bad": self.bad_count,
                "p50_ms": round(self.pct(50), 1), "p95_ms": round(self.pct(95), 1),
                "p99_ms": round(self.pct(99), 1),
                "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
                "skipped": self.skipped}


def _form(image: bytes, emotion: str) -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("source_image", image, filename="portrait.jpg", content_type="image/jpeg")
    form.add_field("emotion", emotion)
    form.add_field("intensity", "0.8")
    return form


async def _one(http: aiohttp.ClientSession, url: str, image: bytes, accept: str, i: int,
               t_start: float, res: LoadResult) -> None:
    """One POST /render; records its status, and its latency when admitted."""
    headers = {"Accept": "image/jpeg"} if accept == "jpeg" else {"Accept": "application/json"}
    emotion = ("happy", "sad", "surprised", "angry")[i % 4]
    try:
        async with http.post(url + "/render", data=_form(image, emotion), headers=headers) as r:
            await r.read()
            status = r.status
            retry_after = r.headers.get("Retry-After")
    except (aiohttp.ClientError, asyncio.TimeoutError, ConnectionError) as exc:
        res.bad_count += 1
        if len(res.bad) < 5:
            res.bad.append(f"{type(exc).__name__}: {exc}"[:200])
        return
    res.statuses[status] += 1
    if status == 200:
        res.latencies_ms.append((time.perf_counter() - t_start) * 1000)
    elif not (status in (429, 503) and retry_after):
        res.bad_count += 1
        if len(res.bad) < 5:
            res.bad.append(f"HTTP {status} Retry-After={retry_after!r}")


async def closed_loop(url: str, image: bytes, clients: int, seconds: float,
                      accept: str = "json") -> LoadResult:
    """`clients` clients, each sending its next request as soon as the last one answered."""
    res = LoadResult(f"{clients} clients", seconds)
    deadline = time.perf_counter() + seconds
    timeout = aiohttp.ClientTimeout(total=seconds + 30)
    conn = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        async def client(k: int) -> None:
            i = k
            while time.perf_counter() < deadline:
                t = time.perf_counter()
                await _one(http, url, image, accept, i, t, res)
                i += clients
        t0 = time.perf_counter()
        await asyncio.gather(*(client(k) for k in range(clients)))
        res.seconds = time.perf_counter() - t0
    return res


async def open_loop(url: str, image: bytes, rate: float, seconds: float,
                    accept: str = "json") -> LoadResult:
    """Requests sent at a fixed rate whatever the answers; latency counts from the planned send."""
    res = LoadResult(f"{rate:g} req/s", seconds)
    n = max(1, int(rate * seconds))
    timeout = aiohttp.ClientTimeout(total=seconds + 30)
    conn = aiohttp.TCPConnector(limit=MAX_OPEN_LOOP_IN_FLIGHT)
    in_flight: set[asyncio.Task] = set()
    async with aiohttp.ClientSession(timeout=timeout, connector=conn) as http:
        t0 = time.perf_counter()
        for i in range(n):
            planned = t0 + i / rate
            delay = planned - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(in_flight) >= MAX_OPEN_LOOP_IN_FLIGHT:
                res.skipped += 1
                continue
            task = asyncio.get_running_loop().create_task(_one(http, url, image, accept, i, planned, res))
            in_flight.add(task)
            task.add_done_callback(in_flight.discard)
        await asyncio.gather(*in_flight)
        res.seconds = max(seconds, time.perf_counter() - t0)
    return res


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.asynccontextmanager
async def spawn_server(extra: list[str] | None = None, ready_timeout: float = 120.0
                       ) -> AsyncIterator[tuple[str, subprocess.Popen]]:
    """`python -m streamer serve --engine mesh` on a free loopback port; stopped with SIGTERM."""
    port = free_port()
    out_dir = tempfile.TemporaryDirectory(prefix="lpa-load-out-")
    cmd = [sys.executable, "-m", "streamer", "--log-level", "WARNING", "serve", "--engine", "mesh",
           "--host", "127.0.0.1", "--port", str(port), "--output-dir", out_dir.name, *(extra or [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + ready_timeout
        async with aiohttp.ClientSession() as http:
            while True:
                if proc.poll() is not None:
                    raise RuntimeError("server exited early: "
                                       + (proc.stderr.read() if proc.stderr else b"").decode()[-2000:])
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(url + "/health") as r:
                        if r.status == 200:
                            break
                if time.monotonic() > deadline:
                    raise RuntimeError("server did not become healthy in time")
                await asyncio.sleep(0.2)
        yield url, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        if proc.stderr:
            proc.stderr.close()
        out_dir.cleanup()


def _print_table(results: list[LoadResult]) -> None:
    print("| step | ok | req/s | refused (429/503) | bad | p50 ms | p95 ms | p99 ms |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        s = r.summary()
        print(f"| {s['step']} | {s['ok']} | {s['rps']} | {s['refused']} | {s['bad']} | "
              f"{s['p50_ms']} | {s['p95_ms']} | {s['p99_ms']} |")


async def _main(args: argparse.Namespace) -> int:
    from streamer.samples import sample_portrait_bytes

    image = sample_portrait_bytes("grace_hopper")
    extra = ["--engine-queue", str(args.engine_queue)] if args.engine_queue else []
    if args.engine_process:
        extra += ["--engine-process", args.engine_process]
    async with contextlib.AsyncExitStack() as stack:
        if args.url:
            url = args.url.rstrip("/")
            if not url.startswith(("http://127.0.0.1", "http://localhost", "http://[::1]")):
                raise SystemExit("error: --url must be a loopback address")
        else:
            url, _ = await stack.enter_async_context(spawn_server(extra))
        await closed_loop(url, image, 1, args.warmup, args.accept)  # caches the portrait
        results = []
        for c in args.clients or []:
            results.append(await closed_loop(url, image, c, args.seconds, args.accept))
            print(json.dumps(results[-1].summary()), flush=True)
        for rate in args.rates or []:
            results.append(await open_loop(url, image, rate, args.seconds, args.accept))
            print(json.dumps(results[-1].summary()), flush=True)
    _print_table(results)
    for r in results:
        if r.bad:
            print(f"{r.label}: unexpected answers, e.g. {r.bad}", file=sys.stderr)
    return 1 if any(r.bad_count for r in results) else 0


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", help="a running server (loopback only); default: start one")
    p.add_argument("--clients", type=int, nargs="*", help="closed-loop client counts, one step each")
    p.add_argument("--rates", type=float, nargs="*", help="open-loop request rates (req/s), one step each")
    p.add_argument("--seconds", type=float, default=10.0, help="length of each step")
    p.add_argument("--warmup", type=float, default=2.0)
    p.add_argument("--accept", choices=("json", "jpeg"), default="json",
                   help="json: JSON answer + PNG file written; jpeg: Accept: image/jpeg, image in the body")
    p.add_argument("--engine-queue", type=int, default=0, help="passed to serve (0: its default)")
    p.add_argument("--engine-process", choices=("auto", "on", "off"), default=None)
    args = p.parse_args()
    if not args.clients and not args.rates:
        args.clients = [1, 2, 4, 64]
    if args.seconds <= 0 or args.seconds > 600:
        raise SystemExit("error: --seconds must be in (0, 600]")
    if any(c < 1 or c > 512 for c in args.clients or []) or any(r <= 0 or r > 2000 for r in args.rates or []):
        raise SystemExit("error: --clients must be 1..512 and --rates in (0, 2000]")
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    return asyncio.run(_main(args))


if __name__ == "__main__":
    sys.exit(main())

"""REST load generators against /render, and a server started as a subprocess.

Shared by bench/load.py (the sweeps in bench/README.md) and tests/test_load.py, test_faults.py.
`closed_loop`: N clients, each sending its next request when the last one answered.
`open_loop`: a fixed request rate whatever the answers. `spawn_server`: `python -m streamer
serve --engine mesh` on a free loopback port, stopped with SIGTERM.
"""
from __future__ import annotations

import asyncio
import contextlib
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import AsyncIterator

import aiohttp

# The repository root (an editable install): the server subprocess runs from there.
ROOT = Path(__file__).resolve().parent.parent

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

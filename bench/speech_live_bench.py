"""Live speech benchmark: audio in -> mouth frame out latency, and session frame rates while
every session speaks against the same sessions silent.

The server runs as its own process (`python -m streamer serve --engine mesh`); the clients
(WebSocket senders, aiortc receivers, FaceMesh on received frames) run in this process.

    python bench/speech_live_bench.py latency --trials 20
    python bench/speech_live_bench.py fps --n 1 2 3 --seconds 8
    python bench/speech_live_bench.py all

latency: a session (256 px, 25 fps, JPEG frames over the WebSocket) gets silence, then a loud
vowel, streamed in real time in 20 ms chunks. The latency is from sending the vowel's first
chunk to the arrival of the first frame whose mouth (FaceMesh inner-lip area) is more than
half-way open. It includes the analyser's look-ahead (80 ms), the timeline's resume lead
(120 ms after silence), rendering, encoding and transport.

fps: N sessions (512 px, 25 fps), each watched by one aiortc peer receiving video and audio;
video frames received per second over `--seconds`, first silent, then while every session
speaks (espeak-ng speech sent at once).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from avatar_testkit.media_clock import AVReceiver  # noqa: E402
from avatar_testkit.pyclient import SessionClient  # noqa: E402
from avatar_testkit.speech import espeak, mouth_opening  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402

CHUNK_S = 0.02


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _start_server() -> tuple[subprocess.Popen, str]:
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "streamer", "serve", "--engine", "mesh",
                             "--host", "127.0.0.1", "--port", str(port)], cwd=ROOT,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as http:
        for _ in range(600):
            try:
                async with http.get(base + "/health") as r:
                    if r.status == 200:
                        return proc, base
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)
    proc.kill()
    raise RuntimeError("server did not start")


async def _paced(c: SessionClient, pcm: np.ndarray, rate: int) -> float:
    """Send pcm in real time, 20 ms per chunk; returns the wall time of the first chunk."""
    n = int(rate * CHUNK_S)
    start = time.monotonic()
    for i, k in enumerate(range(0, len(pcm), n)):
        await asyncio.sleep(max(0.0, start + i * CHUNK_S - time.monotonic()))
        await c.send(pcm[k:k + n].astype("<i2").tobytes())
    return start


async def latency(trials: int) -> dict:
    proc, base = await _start_server()
    rate = 16_000
    vowel = espeak("aah", rate)[: int(0.4 * rate)]
    silence = np.zeros(int(0.5 * rate), np.int16)
    out: list[float] = []
    try:
        async with aiohttp.ClientSession() as http:
            c = await SessionClient.create(http, base, sample_portrait_bytes("grace_hopper"),
                                           idle_motion="false", size="256", fps="25")
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 85})
            await c.wait_for("ready", timeout=30)
            for t in range(trials):
                c.drain_video()
                while not c.binary.empty():
                    c.binary.get_nowait()
                uid = f"lat{t}"
                await c.send({"type": "speak", "id": uid, "format": "pcm_s16le",
                              "sample_rate": rate, "channels": 1})
                await _paced(c, silence, rate)
                onset = await _paced(c, vowel, rate)
                await _paced(c, silence, rate)
                await c.send({"type": "speak_end", "id": uid})
                await c.wait_for("speech_ended", timeout=30, id=uid)
                frames = []
                while not c.binary.empty():
                    arrived, data = c.binary.get_nowait()
                    frames.append((arrived, np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))))
                opening = np.array([mouth_opening(f) for _, f in frames])
                arrivals = np.array([a for a, _ in frames])
                rest = float(np.nanmedian(opening[arrivals < onset])) if (arrivals < onset).any() \
                    else float(np.nanmin(opening))
                top = float(np.nanmax(opening))
                hit = np.flatnonzero((arrivals >= onset) & (opening > rest + 0.5 * (top - rest)))
                if hit.size and top > rest * 1.5:
                    out.append((arrivals[hit[0]] - onset) * 1000.0)
                await asyncio.sleep(0.3)
            await c.close()
    finally:
        proc.terminate()
        proc.wait(10)
    out.sort()
    return {"trials": trials, "measured": len(out),
            "p50_ms": round(statistics.median(out), 1) if out else None,
            "p95_ms": round(out[min(len(out) - 1, int(0.95 * len(out)))], 1) if out else None}


async def fps(ns: list[int], seconds: float) -> list[dict]:
    proc, base = await _start_server()
    speech = espeak("Good morning. I am your assistant, and I will read the whole report to "
                    "you now, slowly and clearly, with every number in it. " * 2, 16_000)
    rows = []
    try:
        async with aiohttp.ClientSession() as http:
            for n in ns:
                clients, receivers = [], []
                for _ in range(n):
                    c = await SessionClient.create(http, base, sample_portrait_bytes("grace_hopper"),
                                                   size="512", fps="25")
                    await c.connect()
                    rx = AVReceiver()
                    await rx.negotiate(c)
                    clients.append(c)
                    receivers.append(rx)
                await asyncio.sleep(2.0)  # warm-up

                async def window() -> list[float]:
                    before = [len(rx.tracks["video"].frames) for rx in receivers]
                    await asyncio.sleep(seconds)
                    return [(len(rx.tracks["video"].frames) - b) / seconds
                            for rx, b in zip(receivers, before)]

                silent = await window()
                for i, c in enumerate(clients):
                    await c.send({"type": "speak", "id": f"s{i}", "format": "pcm_s16le",
                                  "sample_rate": 16_000, "channels": 1})
                    data = speech.astype("<i2").tobytes()
                    for k in range(0, len(data), 64_000):
                        await c.send(data[k:k + 64_000])
                    await c.send({"type": "speak_end", "id": f"s{i}"})
                for i, c in enumerate(clients):
                    await c.wait_for("speech_started", timeout=30, id=f"s{i}")
                speaking = await window()
                for i, c in enumerate(clients):
                    await c.send({"type": "interrupt"})
                for rx in receivers:
                    await rx.close()
                for c in clients:
                    await c.close()
                    async with http.delete(f"{base}/sessions/{c.session_id}"):
                        pass
                row = {"sessions": n, "silent_fps": round(statistics.median(silent), 1),
                       "speaking_fps": round(statistics.median(speaking), 1),
                       "min_speaking_fps": round(min(speaking), 1)}
                row["ratio"] = round(row["speaking_fps"] / max(row["silent_fps"], 1e-6), 2)
                print(row, flush=True)
                rows.append(row)
    finally:
        proc.terminate()
        proc.wait(10)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", choices=("latency", "fps", "all"))
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--n", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--seconds", type=float, default=8.0)
    args = ap.parse_args()
    if args.what in ("latency", "all"):
        print("latency", asyncio.run(latency(args.trials)), flush=True)
    if args.what in ("fps", "all"):
        print("fps", asyncio.run(fps(args.n, args.seconds)), flush=True)


if __name__ == "__main__":
    main()

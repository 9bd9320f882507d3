"""Speech: viseme analysis cost and look-ahead, and POST /render/video speed vs real time.

    .venv/bin/python bench/speech_bench.py [--runs 5] [--seconds 20] [--json]

Audio: espeak-ng reading a paragraph (repeated to --seconds), 22.05 kHz. Analysis figures are
CPU seconds per second of audio (process time, one thread) and the streaming feed() cost per
20 ms chunk. /render/video: the real server on loopback with the mesh engine; speed is audio
duration / wall time of the whole request (upload, decode, analysis, render, encode, store).
Baselines from the same run: the analyser without pocketsphinx (acoustics only), and the bare
engine rendering the same frames (no analysis, no encoding).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path

import aiohttp
import numpy as np
from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from avatar_testkit.pyclient import portrait_form as form  # noqa: E402
from engine.speech.analysis import VisemeAnalyser, analyse  # noqa: E402
from streamer.app import create_app  # noqa: E402
from streamer.config import ServerConfig  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402

TEXT = ("Good morning. I have looked at your calendar, and you have three meetings today. "
        "The first one is at nine with the product team; the second, a call with Maria about "
        "the budget, is at eleven. Would you like me to move the last one to Friday?")


def speech(seconds: float) -> tuple[np.ndarray, int]:
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "s.wav"
        subprocess.run(["espeak-ng", "-w", str(p), TEXT], check=True)
        with wave.open(str(p)) as w:
            pcm, rate = np.frombuffer(w.readframes(w.getnframes()), np.int16), w.getframerate()
    reps = int(np.ceil(seconds * rate / len(pcm)))
    return np.tile(pcm, reps)[: int(seconds * rate)], rate


def wav(pcm: np.ndarray, rate: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return buf.getvalue()


def analysis_figures(pcm: np.ndarray, rate: int, runs: int) -> dict:
    dur = len(pcm) / rate
    out: dict = {}
    for name, phones in (("pocketsphinx+acoustics", True), ("acoustics only (baseline)", False)):
        cpu = []
        for _ in range(runs):
            t = time.process_time()
            analyse(pcm, rate, 25.0, use_phones=phones)
            cpu.append((time.process_time() - t) / dur)
        out[name] = round(statistics.median(cpu), 4)
    t = time.perf_counter()
    VisemeAnalyser(rate, 25.0)
    out["analyser start (decoder load), s"] = round(time.perf_counter() - t, 3)
    an = VisemeAnalyser(rate, 25.0)
    chunk = int(0.02 * rate)
    feed = []
    for i in range(0, len(pcm) - chunk, chunk):
        t = time.perf_counter()
        an.feed(pcm[i:i + chunk])
        an.drain()
        feed.append((time.perf_counter() - t) * 1000)
    out["feed(20 ms) p50 ms"] = round(float(np.percentile(feed, 50)), 3)
    out["feed(20 ms) p95 ms"] = round(float(np.percentile(feed, 95)), 3)
    out["look-ahead ms"] = an.lookahead_ms
    return out


async def video_figures(pcm: np.ndarray, rate: int, runs: int) -> dict:
    from engine.mesh import MeshEngine

    engine = MeshEngine()
    photo = sample_portrait_bytes("grace_hopper")
    dur = len(pcm) / rate
    out: dict = {"audio s": round(dur, 2)}
    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(ServerConfig(port=0, output_dir=Path(tmp)), engine)
        runner = web.AppRunner(app, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}/render/video"
        try:
            async with aiohttp.ClientSession() as http:
                for fmt in ("mp4", "webm"):
                    walls = []
                    for _ in range(runs):
                        f = form(photo, emotion="happy", intensity="0.6", output_format=fmt)
                        f.add_field("audio", wav(pcm, rate), filename="s.wav")
                        t = time.perf_counter()
                        async with http.post(url, data=f) as r:
                            assert r.status == 200, await r.text()
                            await r.json()
                        walls.append(time.perf_counter() - t)
                    out[f"{fmt}: x real time"] = round(dur / statistics.median(walls), 2)
        finally:
            await runner.cleanup()
    # Baseline: the engine alone rendering the very same motions (emotion, idle motion, the
    # analysed mouth) in the same chunks: no HTTP, decoding, analysis or encoding.
    from PIL import Image

    from engine.speech.analysis import analyse as analyse_poses
    from streamer.video.timeline import MotionTimeline, default_timeline

    src = engine.prepare(np.asarray(Image.open(io.BytesIO(photo)).convert("RGB")))
    poses = analyse_poses(pcm, rate, 25.0)
    timeline = MotionTimeline(default_timeline("happy", 0.6), 25.0)
    motions = [timeline.motion(k, p) for k, p in enumerate(poses)]
    walls = []
    for _ in range(runs):
        t = time.perf_counter()
        for k in range(0, len(motions), 8):
            engine.render([(src, m) for m in motions[k:k + 8]])
        walls.append(time.perf_counter() - t)
    out["engine alone, same motions (baseline): x real time"] = round(dur / statistics.median(walls), 2)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=20.0)
    ap.add_argument("--json", action="store_true")
    a = ap.parse_args()
    pcm, rate = speech(a.seconds)
    res = {"analysis (CPU s per audio s, median)": analysis_figures(pcm, rate, a.runs),
           "render/video (median)": asyncio.run(video_figures(pcm, rate, a.runs))}
    print(json.dumps(res, indent=2) if a.json else res)


if __name__ == "__main__":
    main()

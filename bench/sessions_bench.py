"""Sessions benchmark: capacity (N aiortc receivers at 25 fps, 512x512, VP8) and
control-to-frame latency at N=1.

The server runs as its own process (`liveportrait-avatar serve --engine mesh`), as in
production; all receivers run in this process (aiortc decode included), so they take
their share of the same CPUs.

    python bench/sessions_bench.py capacity --n 1 2 4 6 --seconds 10
    python bench/sessions_bench.py latency --trials 40            # aiortc receiver
    python bench/sessions_bench.py latency-browser --trials 40    # headless Chromium
    python bench/sessions_bench.py latency-browser --audio off on --jitter-target default 0
    python bench/sessions_bench.py all
    # before/after in one run: a server per source tree, interleaved (e.g. a worktree of main)
    python bench/sessions_bench.py latency --trees /tmp/base . --rounds 2
    python bench/sessions_bench.py capacity --n 4 6 --viewers 2 --trees /tmp/base .

Capacity criterion: every session delivers >= 24 fps to its receiver and the server drops
< 2% of frame slots. CPU is read from /proc (server process, this receiver process) and the
engine's own time from the server's /metrics.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from streamer.samples import sample_portrait_bytes  # noqa: E402
from aiortc import RTCConfiguration, RTCPeerConnection  # noqa: E402
from aiortc.mediastreams import MediaStreamError  # noqa: E402
from avatar_testkit.pyclient import SessionClient  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def _children(pid: int) -> list[int]:
    out = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            out += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            pass
    return out


def _cpu_tree_s(pid: int) -> tuple[float, float]:
    """(server process CPU, its child processes' CPU): the engine child in process mode."""
    kids = 0.0
    for c in _children(pid):
        try:
            kids += _cpu_s(c)
        except OSError:
            pass
    return _cpu_s(pid), kids


def _loadavg() -> str:
    return Path("/proc/loadavg").read_text().split()[0]


@dataclass
class Server:
    proc: subprocess.Popen
    base_url: str
    engine_process: str = "auto"
    tree: str = "."

    @staticmethod
    async def start(max_sessions: int = 32, engine_process: str = "auto", tree: Path = ROOT,
                    admission: bool = False, engine_args: tuple[str, ...] = ("--engine", "mesh"),
                    start_timeout_s: float = 30.0, log_to: Path | None = None) -> "Server":
        """The server from the source tree ``tree`` (this checkout, or e.g. a worktree of main
        for a same-run baseline). Measured admission (503 server_busy) is off unless asked
        for, so that capacity runs measure how far the sessions themselves hold."""
        port = _free_port()
        cmd = [sys.executable, "-m", "streamer.cli", "--log-level", "WARNING", "serve",
               *engine_args, "--host", "127.0.0.1", "--port", str(port),
               "--max-sessions", str(max_sessions), "--engine-process", engine_process]
        if not admission and "--max-session-load" in (tree / "streamer" / "cli.py").read_text():
            cmd += ["--max-session-load", "0"]
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(
            [str(tree)] + [x for x in [os.environ.get("PYTHONPATH")] if x]))
        out = open(log_to, "ab") if log_to else subprocess.DEVNULL
        proc = subprocess.Popen(cmd, cwd=tree, env=env, stdout=out, stderr=out)
        base = f"http://127.0.0.1:{port}"
        async with aiohttp.ClientSession() as http:
            for _ in range(int(start_timeout_s * 10)):
                if proc.poll() is not None:
                    break
                try:
                    async with http.get(base + "/health") as r:
                        if r.status == 200:
                            return Server(proc, base, engine_process, str(tree))
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.1)
        proc.kill()
        raise RuntimeError("server did not start")

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


async def _engine_render_s(http: aiohttp.ClientSession, base: str) -> float:
    async with http.get(base + "/metrics") as r:
        text = await r.text()
    m = re.search(r'^liveportrait_engine_seconds_sum\{op="render"\} (\S+)$', text, re.M)
    return float(m.group(1)) if m else 0.0


@dataclass
class Receiver:
    """One aiortc viewer of a session. Its own peer (not SessionClient.start_video) so that the
    bench decides what the receiver does per frame: decode only (``decode_only``, what any
    receiver must do) or also convert to RGB (what the test kit does); and whether the offer
    asks for the session's audio too (a browser's does: one Opus track per viewer)."""

    client: SessionClient
    frames: int = 0
    audio_frames: int = 0
    tasks: list[asyncio.Task] = field(default_factory=list)

    async def start(self, audio: bool, decode_only: bool, timeout: float = 10.0) -> None:
        c = self.client
        c.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        c.pc.addTransceiver("video", direction="recvonly")
        if audio:
            c.pc.addTransceiver("audio", direction="recvonly")
        got_video: asyncio.Future = asyncio.get_running_loop().create_future()

        @c.pc.on("track")
        def _on_track(track) -> None:  # noqa: ANN001
            if track.kind == "video":
                if not got_video.done():
                    got_video.set_result(track)
            else:
                self.tasks.append(asyncio.get_running_loop().create_task(self._pull_audio(track)))

        await c.negotiate(timeout)
        track = await asyncio.wait_for(got_video, timeout)
        self.tasks.append(asyncio.get_running_loop().create_task(self._pull(track, decode_only)))

    async def _pull(self, track, decode_only: bool) -> None:  # noqa: ANN001
        try:
            while True:
                frame = await track.recv()  # decoded (aiortc decodes every frame)
                if not decode_only:
                    frame.to_ndarray(format="rgb24")
                self.frames += 1
        except MediaStreamError:
            return

    async def _pull_audio(self, track) -> None:  # noqa: ANN001
        try:
            while True:
                await track.recv()
                self.audio_frames += 1
        except MediaStreamError:
            return

    async def close(self) -> None:
        for t in self.tasks:
            t.cancel()
        await self.client.close()


def _last_stats(c: SessionClient) -> dict:
    return next((e for e in reversed(c.events) if e.get("type") == "stats"), {})


async def capacity_once(server: Server, n: int, seconds: float, viewers: int = 1,
                        audio: bool = False, decode_only: bool = False) -> dict:
    photos = [sample_portrait_bytes("astronaut"), sample_portrait_bytes("grace_hopper")]
    async with aiohttp.ClientSession() as http:
        receivers = []
        for i in range(n):
            c = await SessionClient.create(http, server.base_url, photos[i % 2], fps=25,
                                           size=512, codec="vp8")
            for v in range(viewers):  # more viewers of the same session: more sockets + peers
                cv = c if v == 0 else SessionClient(http, c.info)
                await cv.connect()
                r = Receiver(cv)
                await r.start(audio, decode_only)
                receivers.append(r)
        await asyncio.sleep(3.0)  # warm-up: ICE, bitrate ramp, caches
        for r in receivers:
            await r.client.wait_for("stats", after=len(r.client.events))
        s0 = [_last_stats(r.client) for r in receivers]
        f0 = [r.frames for r in receivers]
        e0 = await _engine_render_s(http, server.base_url)
        (cpu_srv0, cpu_kid0), cpu_me0 = _cpu_tree_s(server.proc.pid), _cpu_s(os.getpid())
        t0 = time.monotonic()
        await asyncio.sleep(seconds)
        t1 = time.monotonic()
        (cpu_srv1, cpu_kid1), cpu_me1 = _cpu_tree_s(server.proc.pid), _cpu_s(os.getpid())
        e1 = await _engine_render_s(http, server.base_url)
        f1 = [r.frames for r in receivers]
        for r in receivers:
            await r.client.wait_for("stats", after=len(r.client.events))
        s1 = [_last_stats(r.client) for r in receivers]
        dt = t1 - t0
        fps = [(b - a) / dt for a, b in zip(f0, f1)]
        delivered = max(1, sum(f1) - sum(f0))
        rendered = sum(b["frames"] - a["frames"] for a, b in zip(s0, s1))
        dropped = sum(b["dropped"] - a["dropped"] for a, b in zip(s0, s1))
        render_ms = statistics.median(s["render_ms"] for s in s1 if s.get("render_ms") is not None)
        for r in receivers:
            await r.close()
        for sid in {r.client.session_id for r in receivers}:
            async with http.delete(f"{server.base_url}/sessions/{sid}"):
                pass
        await asyncio.sleep(0.5)
    drop_pct = 100.0 * dropped / max(1, rendered + dropped)
    return {
        "tree": server.tree, "engine_process": server.engine_process, "n": n, "viewers": viewers, "seconds": round(dt, 1), "fps_min": round(min(fps), 2),
        "fps_median": round(statistics.median(fps), 2), "dropped_pct": round(drop_pct, 2),
        "ok": min(fps) >= 24.0 and drop_pct < 2.0,
        # server + engine child; the child's share alone in the next column
        "server_cpu_cores": round((cpu_srv1 - cpu_srv0 + cpu_kid1 - cpu_kid0) / dt, 2),
        "engine_child_cpu_cores": round((cpu_kid1 - cpu_kid0) / dt, 2),
        "engine_busy_cores": round((e1 - e0) / dt, 2),
        "receivers_cpu_cores": round((cpu_me1 - cpu_me0) / dt, 2),
        "render_ms_per_frame_median": render_ms,
        # CPU per delivered (decoded) frame, per process: robust to the neighbours' load where
        # fps is not. "server" is the server process without its engine child.
        "delivered_fps": round(delivered / dt, 1),
        "cpu_ms_per_frame": {
            "engine_child": round(1000 * (cpu_kid1 - cpu_kid0) / delivered, 2),
            "server": round(1000 * (cpu_srv1 - cpu_srv0) / delivered, 2),
            "receivers": round(1000 * (cpu_me1 - cpu_me0) / delivered, 2)},
        "audio": audio, "decode_only": decode_only,
        "loadavg_1m": _loadavg(),
    }


def _mouth(frame: np.ndarray) -> np.ndarray:
    h, w = frame.shape[:2]
    return frame[int(0.45 * h):int(0.65 * h), int(0.35 * w):int(0.65 * w)].astype(np.int16)


async def latency(server: Server, trials: int) -> dict:
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, sample_portrait_bytes("astronaut"),
                                       fps=25, size=512, idle_motion="false")
        await c.connect()
        await c.start_video()
        for _ in range(40):  # warm-up, and let the VP8 bitrate settle
            await c.next_video_frame()
        emotions = ["happy", "neutral"]
        client_ms, server_ms, misses = [], [], 0
        for i in range(trials):
            await asyncio.sleep(0.35)
            c.drain_video()
            _, ref = await c.next_video_frame()
            sent = time.monotonic()
            n_events = len(c.events)
            await c.send({"type": "set_emotion", "emotion": emotions[i % 2], "intensity": 1.0,
                          "transition_ms": 0})
            got = None
            for _ in range(40):
                arrived, f = await c.next_video_frame()
                if float(np.abs(_mouth(f) - _mouth(ref)).mean()) > 2.0:
                    got = arrived
                    break
            if got is None:
                misses += 1
                continue
            client_ms.append((got - sent) * 1000.0)
            st = await c.wait_for("stats", after=n_events, timeout=3)
            if st.get("control_latency_ms") is not None:
                server_ms.append(st["control_latency_ms"])
        await c.close()
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}"):
            pass

    def pct(xs: list[float], q: float) -> float:
        return round(float(np.percentile(xs, q)), 1) if xs else float("nan")

    return {"tree": server.tree, "trials": trials, "missed": misses, "client_p50_ms": pct(client_ms, 50),
            "client_p95_ms": pct(client_ms, 95), "client_max_ms": pct(client_ms, 100),
            "server_p50_ms": pct(server_ms, 50), "server_p95_ms": pct(server_ms, 95),
            "loadavg_1m": _loadavg()}


# Runs inside Chromium on a same-origin page: one session, one RTCPeerConnection, a <video>;
# each trial sends set_emotion and waits for the first *presented* frame
# (requestVideoFrameCallback) whose mouth region changed. For that frame it keeps the
# callback's metadata, all on the performance.now() clock: receiveTime (its last packet
# arrived), presentationTime (handed to the compositor), expectedDisplayTime (on screen), and
# the callback's own time. ``jitterTarget`` (ms, or null for the browser's default) is set on
# the video receiver as jitterBufferTarget; ``audio`` adds the session's audio track as the
# demo page does (one stream: the browser lip-syncs the video to it).
_BROWSER_JS = """
async ({photoB64, trials, jitterTarget, audio}) => {
  const bytes = Uint8Array.from(atob(photoB64), c => c.charCodeAt(0));
  const fd = new FormData();
  fd.append("source_image", new Blob([bytes], {type: "image/jpeg"}), "p.jpg");
  fd.append("idle_motion", "false");
  const s = await (await fetch("/sessions", {method: "POST", body: fd})).json();
  const ws = new WebSocket(s.ws_url);
  await new Promise(r => ws.onopen = r);
  const pc = new RTCPeerConnection({iceServers: []});
  const tr = pc.addTransceiver("video", {direction: "recvonly"});
  if (jitterTarget !== null) tr.receiver.jitterBufferTarget = jitterTarget;
  if (audio) pc.addTransceiver("audio", {direction: "recvonly"});  // as the demo page does
  const video = document.createElement("video");
  video.muted = true; video.playsInline = true; document.body.appendChild(video);
  pc.ontrack = e => { if (e.track.kind !== "video") return;
                      video.srcObject = e.streams[0] || new MediaStream([e.track]); video.play(); };
  pc.onicecandidate = e => ws.send(JSON.stringify({type: "candidate",
                                                   candidate: e.candidate ? e.candidate.toJSON() : null}));
  const answered = new Promise(r => ws.onmessage = m => {
    const ev = JSON.parse(m.data); if (ev.type === "answer") r(ev); });
  await pc.setLocalDescription(await pc.createOffer());
  ws.send(JSON.stringify({type: "offer", sdp: pc.localDescription.sdp}));
  await pc.setRemoteDescription({type: "answer", sdp: (await answered).sdp});
  const canvas = document.createElement("canvas"); canvas.width = 512; canvas.height = 512;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const mouth = () => { ctx.drawImage(video, 0, 0, 512, 512);
                        return ctx.getImageData(179, 230, 154, 102).data; };
  let onFrame = null;
  const loop = (now, meta) => { if (onFrame) onFrame(now, meta); video.requestVideoFrameCallback(loop); };
  video.requestVideoFrameCallback(loop);
  await new Promise(r => setTimeout(r, 3000));
  const out = []; const emos = ["happy", "neutral"];
  for (let i = 0; i < trials; i++) {
    await new Promise(r => setTimeout(r, 350));
    const ref = mouth(); const t0 = performance.now();
    const done = new Promise(resolve => { onFrame = (now, meta) => {
      const t = performance.now();
      const m = mouth(); let d = 0;
      for (let k = 0; k < m.length; k += 4)
        d += Math.abs(m[k] - ref[k]) + Math.abs(m[k+1] - ref[k+1]) + Math.abs(m[k+2] - ref[k+2]);
      if (d / (m.length / 4 * 3) > 2) {
        onFrame = null;
        const rel = x => (x === undefined ? null : x - t0);
        resolve({callback: t - t0, raf: now - t0, received: rel(meta.receiveTime),
                 presented: rel(meta.presentationTime), display: rel(meta.expectedDisplayTime),
                 processing: meta.processingDuration === undefined ? null : meta.processingDuration * 1000});
      } }; });
    ws.send(JSON.stringify({type: "set_emotion", emotion: emos[i % 2], intensity: 1, transition_ms: 0}));
    out.push(await Promise.race([done, new Promise(r => setTimeout(() => r(null), 2000))]));
    onFrame = null;
  }
  const target = tr.receiver.jitterBufferTarget;
  // Mean time a frame / an audio sample spent in the receiver's jitter buffer (lip sync).
  const buffered = {};
  (await pc.getStats()).forEach(r => {
    if (r.type === "inbound-rtp" && r.jitterBufferEmittedCount > 0)
      buffered[r.kind] = 1000 * r.jitterBufferDelay / r.jitterBufferEmittedCount; });
  pc.close(); ws.close();
  await fetch("/sessions/" + s.session_id, {method: "DELETE"});
  return {trials: out, jitterBufferTarget: target === undefined ? "unsupported" : target, buffered};
}
"""

# What each latency-browser figure measures, from the control's send (performance.now()):
# received = the changed frame's last RTP packet arrived (server + network);
# presented = the frame was handed to the compositor (adds jitter buffer, decode, render
#   scheduling): the headline figure;
# display = expected on screen (one vsync later); callback = when the page's callback ran.
_BROWSER_FIELDS = ("received", "presented", "display", "callback")


async def _launch_chromium(playwright):  # type: ignore[no-untyped-def]
    """Debian's Chromium as the demo's viewers run it: host candidates visible on loopback,
    sound allowed to play without a click."""
    return await playwright.chromium.launch(
        executable_path="/usr/bin/chromium",
        args=["--disable-features=WebRtcHideLocalIpsWithMdns",
              "--autoplay-policy=no-user-gesture-required"])


async def latency_browser(server: Server, trials: int, jitter_target: float | None = None,
                          audio: bool = False, dump: bool = False) -> dict:
    import base64

    from playwright.async_api import async_playwright

    photo = base64.b64encode(sample_portrait_bytes("astronaut")).decode()
    async with async_playwright() as p:
        browser = await _launch_chromium(p)
        page = await browser.new_page()
        await page.goto(server.base_url + "/health")  # any same-origin page will do
        got = await page.evaluate(_BROWSER_JS, {"photoB64": photo, "trials": trials,
                                                "jitterTarget": jitter_target, "audio": audio})
        await browser.close()
    ok = [x for x in got["trials"] if x is not None]
    if dump:  # every trial's figures, for a look at the spread
        for x in ok:
            print(json.dumps({k: None if v is None else round(v, 1) for k, v in x.items()}), file=sys.stderr)

    def pct(key: str, q: float) -> float:
        xs = [x[key] for x in ok if x.get(key) is not None]
        return round(float(np.percentile(xs, q)), 1) if xs else float("nan")

    out = {"tree": server.tree, "trials": trials, "missed": len(got["trials"]) - len(ok),
           "jitter_buffer_target": got["jitterBufferTarget"], "audio": audio,
           "p50_ms": pct("presented", 50), "p95_ms": pct("presented", 95),
           "max_ms": pct("presented", 100)}
    for kind, ms in sorted(got["buffered"].items()):
        out[f"{kind}_jitter_buffer_mean_ms"] = round(ms, 1)
    for key in _BROWSER_FIELDS:
        out[f"{key}_p50_ms"] = pct(key, 50)
        out[f"{key}_p95_ms"] = pct(key, 95)
    out["loadavg_1m"] = _loadavg()
    return out


# lipsync-browser: the session (idle motion on, so frames keep flowing) streams video and its
# audio track to Chromium as the demo page does; the page then stays silent, speaks through
# POST /sessions/{id}/say (espeak-ng), and stays silent again. Every ``stepMs`` it reads
# getStats and keeps, per kind, the mean jitter-buffer delay of the samples/frames emitted in
# that step (delta jitterBufferDelay / delta jitterBufferEmittedCount): the A/V offset the
# browser leaves is audio delay - video delay (positive: the sound plays behind the lips).
_LIPSYNC_JS = """
async ({photoB64, silentMs, afterMs, stepMs, text}) => {
  const bytes = Uint8Array.from(atob(photoB64), c => c.charCodeAt(0));
  const fd = new FormData();
  fd.append("source_image", new Blob([bytes], {type: "image/jpeg"}), "p.jpg");
  const s = await (await fetch("/sessions", {method: "POST", body: fd})).json();
  const ws = new WebSocket(s.ws_url);
  await new Promise(r => ws.onopen = r);
  const pc = new RTCPeerConnection({iceServers: []});
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.addTransceiver("audio", {direction: "recvonly"});
  const video = document.createElement("video");
  video.playsInline = true; document.body.appendChild(video);
  pc.ontrack = e => { if (!video.srcObject) { video.srcObject = e.streams[0]; video.play(); } };
  pc.onicecandidate = e => ws.send(JSON.stringify({type: "candidate",
                                                   candidate: e.candidate ? e.candidate.toJSON() : null}));
  let ended = false;
  const answered = new Promise(r => ws.onmessage = m => {
    const ev = JSON.parse(m.data);
    if (ev.type === "answer") r(ev);
    if (ev.type === "speech_ended") ended = true; });
  await pc.setLocalDescription(await pc.createOffer());
  ws.send(JSON.stringify({type: "offer", sdp: pc.localDescription.sdp}));
  await pc.setRemoteDescription({type: "answer", sdp: (await answered).sdp});
  const last = {};
  const t0 = performance.now();
  const samples = [];
  const sample = async phase => {
    const row = {t: Math.round(performance.now() - t0), phase};
    (await pc.getStats()).forEach(r => {
      if (r.type !== "inbound-rtp") return;
      const prev = last[r.kind] || {d: 0, n: 0};
      const dn = r.jitterBufferEmittedCount - prev.n;
      if (dn > 0) row[r.kind] = 1000 * (r.jitterBufferDelay - prev.d) / dn;
      last[r.kind] = {d: r.jitterBufferDelay, n: r.jitterBufferEmittedCount}; });
    samples.push(row);
  };
  const sleep = ms => new Promise(r => setTimeout(r, ms));
  for (let t = 0; t < silentMs; t += stepMs) { await sleep(stepMs); await sample("silent"); }
  const body = new URLSearchParams({text});
  const said = await fetch("/sessions/" + s.session_id + "/say", {method: "POST", body});
  if (!said.ok) throw new Error("say: " + said.status + " " + await said.text());
  while (!ended) { await sleep(stepMs); await sample("speaking"); }
  for (let t = 0; t < afterMs; t += stepMs) { await sleep(stepMs); await sample("after"); }
  pc.close(); ws.close();
  await fetch("/sessions/" + s.session_id, {method: "DELETE"});
  return samples;
}
"""

LIPSYNC_TEXT = ("Good morning. This is a long sentence, so that the browser has time to bring "
                "its video and its audio together while the avatar is speaking to you. "
                "And here is a second sentence, to keep the voice going for a while longer.")


async def lipsync_browser(server: Server, silent_s: float = 6.0, after_s: float = 6.0,
                          step_s: float = 0.5, dump: bool = False) -> dict:
    """Per phase (silent, speaking, its second half, after) the median of the per-step mean
    jitter-buffer delays of video and audio, and of their difference (audio - video)."""
    import base64

    from playwright.async_api import async_playwright

    photo = base64.b64encode(sample_portrait_bytes("astronaut")).decode()
    async with async_playwright() as p:
        browser = await _launch_chromium(p)
        page = await browser.new_page()
        await page.goto(server.base_url + "/health")
        rows = await page.evaluate(_LIPSYNC_JS, {
            "photoB64": photo, "silentMs": int(silent_s * 1000), "afterMs": int(after_s * 1000),
            "stepMs": int(step_s * 1000), "text": LIPSYNC_TEXT})
        await browser.close()
    if dump:
        for r in rows:
            print(json.dumps({k: round(v, 1) if isinstance(v, float) else v
                              for k, v in r.items()}), file=sys.stderr)
    speaking = [r for r in rows if r["phase"] == "speaking"]
    phases = {"silent": [r for r in rows if r["phase"] == "silent"][2:],  # after connecting
              "speaking": speaking, "speaking_2nd_half": speaking[len(speaking) // 2:],
              "after": [r for r in rows if r["phase"] == "after"],
              "after_last_half": [r for r in rows if r["phase"] == "after"][int(after_s / step_s) // 2:]}

    def med(xs: list[float]) -> float:
        return round(float(np.median(xs)), 1) if xs else float("nan")

    out: dict = {"tree": server.tree, "speech_s": round(len(speaking) * step_s, 1)}
    for name, rs in phases.items():
        both = [r for r in rs if "video" in r and "audio" in r]
        out[name] = {"video_ms": med([r["video"] for r in both]),
                     "audio_ms": med([r["audio"] for r in both]),
                     "audio_minus_video_ms": med([r["audio"] - r["video"] for r in both]),
                     "steps": len(both)}
    out["loadavg_1m"] = _loadavg()
    return out


async def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("what", choices=("capacity", "latency", "latency-browser", "lipsync-browser", "all"))
    p.add_argument("--n", type=int, nargs="+", default=[1, 2, 4, 6, 8])
    p.add_argument("--seconds", type=float, default=10.0)
    p.add_argument("--trials", type=int, default=40)
    p.add_argument("--engine-process", nargs="+", default=["auto"], choices=("auto", "on", "off"),
                   help="server modes to compare; with --rounds R they are interleaved R times")
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--trees", type=Path, nargs="+", default=[ROOT],
                   help="source trees whose servers to compare (default: this checkout); "
                        "interleaved per round, like --engine-process")
    p.add_argument("--jitter-target", nargs="+", default=["default"],
                   help="latency-browser: the video receiver's jitterBufferTarget in ms, or "
                        "'default' (not set); several values run in turn on each server")
    # One --audio for both modes (two add_argument calls for it made argparse refuse to start):
    # latency-browser runs each listed value in turn; capacity: bare --audio, or "on", is on.
    p.add_argument("--audio", nargs="*", default=["off"], choices=("off", "on"),
                   help="latency-browser: also receive the audio track, as the demo page does "
                        "(off, on or both); capacity: receivers also ask for the session's audio "
                        "(one Opus track per viewer, as a browser's offer does)")
    p.add_argument("--dump-trials", action="store_true",
                   help="latency-browser: print every trial's figures to stderr; "
                        "lipsync-browser: every step's delays")
    p.add_argument("--viewers", type=int, default=1, help="WebRTC viewers per session (capacity)")
    p.add_argument("--decode-only", action="store_true",
                   help="receivers only decode (no RGB conversion per frame)")
    p.add_argument("--admission", action="store_true",
                   help="keep measured admission on (503 server_busy past capacity)")
    args = p.parse_args()
    for rnd in range(args.rounds):
        for tree in args.trees:
            for mode in args.engine_process:
                print(json.dumps({"round": rnd + 1, "tree": str(tree), "engine_process": mode,
                                  "loadavg_1m": _loadavg()}), flush=True)
                await run_one(args, await Server.start(engine_process=mode, tree=tree.resolve(),
                                                       admission=args.admission))


async def run_one(args: argparse.Namespace, server: Server) -> None:
    try:
        if args.what in ("latency", "all"):
            print(json.dumps({"latency": await latency(server, args.trials)}), flush=True)
        if args.what in ("latency-browser", "all"):
            for audio in args.audio or ["on"]:
                for target in args.jitter_target:
                    jt = None if target == "default" else float(target)
                    r = await latency_browser(server, args.trials, jt, audio == "on", args.dump_trials)
                    print(json.dumps({"latency_browser": r}), flush=True)
        if args.what == "lipsync-browser":
            r = await lipsync_browser(server, dump=args.dump_trials)
            print(json.dumps({"lipsync_browser": r}), flush=True)
        if args.what in ("capacity", "all"):
            best = 0
            for n in args.n:
                r = await capacity_once(server, n, args.seconds, args.viewers,
                                        args.audio == [] or "on" in args.audio,
                                        args.decode_only)
                print(json.dumps({"capacity": r}), flush=True)
                if r["ok"]:
                    best = max(best, n)
            print(json.dumps({"capacity_n": best}), flush=True)
    finally:
        server.stop()


if __name__ == "__main__":
    asyncio.run(main())

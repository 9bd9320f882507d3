#!/usr/bin/env python3
"""Where the server's CPU goes with N live sessions: py-spy samples the server process (not
the engine child) while N aiortc receivers watch, then the stacks are sorted into categories.

    pip install py-spy    # a tool, not a project dependency
    python bench/profile_sessions.py TREE N SECONDS OUT.txt   # TREE: a source tree, e.g. . or /tmp/base

Samples of threads that only wait (idle pool workers, epoll, the engine thread reading the
child's pipe, GIL waits) are left out; "busy threads" = busy samples / (seconds x rate).
"""
import asyncio
import collections
import json
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
sys.path.insert(0, str(BENCH.parent))

import aiohttp  # noqa: E402

import sessions_bench as sb  # noqa: E402
from avatar_testkit.pyclient import SessionClient  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402

RATE = 50
IDLE = ("_queue_SimpleQueue_get", "epoll_wait", "Connection._recv", "pthread_cond_timedwait",
        "sem_wait", "PyThread_acquire_lock_timed")
CATS = [("VP8 encode", ("vpx_", "Vp8Encoder", "CodecContext", "SessionEncoder._encode", "avcodec")),
        ("RGB->I420", ("cvtColor", "rgb_to_i420", "from_ndarray", "sws_")),
        ("RTP/SRTP/ICE send", ("rtcrtpsender", "RTCRtpSender", "RTCDtls", "aioice", "srtp",
                               "sock_send", "sendto", "RtpPacket")),
        ("WebSocket/HTTP", ("aiohttp", "ws.py", "web_protocol")),
        ("scheduler/session/track", ("Scheduler", "Session", "scheduler.py", "session.py",
                                     "SessionVideoTrack", "PacketTrack", "Headroom")),
        ("engine IPC (server side)", ("engine_process", "EngineWorker", "engine_worker"))]


def classify(path: str, seconds: float) -> dict:
    cats: collections.Counter = collections.Counter()
    total = busy = 0
    for line in open(path):
        stack, _, n = line.rpartition(" ")
        total += int(n)
        frames = [x for x in stack.split(";") if not x.startswith("0x")]
        if any(k in x for x in frames[-3:] for k in IDLE):
            continue
        busy += int(n)
        name = next((nm for nm, keys in CATS if any(k in stack for k in keys)), "other")
        cats[name] += int(n)
    return {"samples": total, "busy": busy, "busy_threads": round(busy / seconds / RATE, 2),
            "share": {k: round(v / max(1, busy), 2) for k, v in cats.most_common()}}


async def main(tree: str, n: int, seconds: int, out: str) -> None:
    server = await sb.Server.start(tree=Path(tree).resolve())
    try:
        async with aiohttp.ClientSession() as http:
            clients = []
            for _ in range(n):
                c = await SessionClient.create(http, server.base_url,
                                               sample_portrait_bytes("astronaut"), fps=25, size=512)
                await c.connect()
                await c.start_video()
                clients.append(c)
            await asyncio.sleep(3)  # warm-up
            spy = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("py-spy")), "record", "-p", str(server.proc.pid),
                "-d", str(seconds), "-f", "raw", "-o", out, "--native", "-r", str(RATE),
                stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
            while spy.returncode is None:
                for c in clients:
                    c.drain_video()
                try:
                    await asyncio.wait_for(spy.wait(), 0.5)
                except asyncio.TimeoutError:
                    pass
            for c in clients:
                await c.close()
    finally:
        server.stop()
    print(json.dumps({"tree": tree, "n": n, **classify(out, seconds)}))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]))

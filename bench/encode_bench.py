#!/usr/bin/env python3
"""Per-frame cost of a session's video encode: aiortc's own VP8 encoder (the baseline: what
every viewer's sender ran before) against the shared session encoder (streamer/sessions/
video.py) at several libvpx speeds, on real mesh-engine frames (512x512, idle motion: head
sway and blinks, so every frame differs a little, as in a live session).

    python bench/encode_bench.py [--frames 200] [--speeds 6 10 16]

Quality: PSNR of the decoded frame against the rendered one (RGB, dB; median).
Thread CPU time per frame (time.thread_time, so other load on the machine does not count),
median over the frames after 10 warm-up frames; configurations interleaved frame by frame.
Also the size of the encoded frames; the baseline is set to the shared encoder's bitrate
(aiortc starts at 500 kbit/s and follows the receiver's REMB up to 1.5 Mbit/s).
"""
from __future__ import annotations

import argparse
import fractions
import json
import statistics
import sys
import time
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aiortc.codecs.vpx import Vp8Encoder  # noqa: E402

from engine.mesh import MeshEngine  # noqa: E402
from engine.motion import Motion  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402
from streamer.sessions import video  # noqa: E402
from streamer.sessions.idle import IdleAnimator  # noqa: E402


def frames(n: int) -> list[np.ndarray]:
    import io
    import random

    from PIL import Image

    eng = MeshEngine()
    photo = np.asarray(Image.open(io.BytesIO(sample_portrait_bytes("astronaut"))).convert("RGB"))
    src = eng.prepare(photo)
    idle = IdleAnimator(random.Random(1))
    out = []
    for i in range(n):
        st = idle.state(i / 25.0)
        out.append(eng.render([(src, Motion(idle=st))], mode="crop", size=512)[0])
    return out


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--speeds", type=int, nargs="+", default=[6, 10, 16])
    args = p.parse_args()
    fs = frames(args.frames)
    tb = fractions.Fraction(1, 90_000)
    aio = Vp8Encoder()
    aio.target_bitrate = video.BITRATE["vp8"]  # same bitrate as ours (aiortc ramps up by REMB)
    ours = {}
    for sp in args.speeds:
        video.VP8_OPTIONS["cpu-used"] = str(sp)
        ours[sp] = video.SessionEncoder("vp8", 512, 25)
    decoders = {sp: av.CodecContext.create("vp8", "r") for sp in args.speeds}
    psnr: dict[str, list[float]] = {f"shared, cpu-used {sp}": [] for sp in args.speeds}
    cost: dict[str, list[float]] = {"aiortc Vp8Encoder (baseline)": []}
    size: dict[str, list[int]] = {"aiortc Vp8Encoder (baseline)": []}
    for sp in args.speeds:
        cost[f"shared, cpu-used {sp}"] = []
        size[f"shared, cpu-used {sp}"] = []
    for i, f in enumerate(fs):
        pts = i * 3600
        t = time.thread_time()
        vf = video.rgb_to_i420(f)  # the old track converted with OpenCV too, then aiortc encoded
        vf.pts, vf.time_base = pts, tb
        payloads, _ = aio.encode(vf, i == 0)
        c = time.thread_time() - t
        if i >= 10:
            cost["aiortc Vp8Encoder (baseline)"].append(c)
            size["aiortc Vp8Encoder (baseline)"].append(sum(len(x) for x in payloads))
        for sp, enc in ours.items():
            video.VP8_OPTIONS["cpu-used"] = str(sp)
            data, c = enc._encode(f, i == 0, pts)
            if i >= 10:
                cost[f"shared, cpu-used {sp}"].append(c)
                size[f"shared, cpu-used {sp}"].append(len(data))
            for dec in decoders[sp].decode(av.Packet(data)):
                if i >= 10:
                    err = np.mean((dec.to_ndarray(format="rgb24").astype(np.float64) - f) ** 2)
                    psnr[f"shared, cpu-used {sp}"].append(10 * np.log10(255.0 ** 2 / max(err, 1e-9)))
    base = statistics.median(cost["aiortc Vp8Encoder (baseline)"])
    for k in cost:
        m = statistics.median(cost[k])
        print(json.dumps({"encoder": k, "cpu_ms_median": round(m * 1000, 2),
                          "vs_baseline": round(m / base, 2),
                          "kbytes_per_frame_median": round(statistics.median(size[k]) / 1000, 1),
                          "psnr_db_median": round(statistics.median(psnr[k]), 2) if k in psnr
                          else None}))


if __name__ == "__main__":
    main()

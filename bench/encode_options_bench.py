#!/usr/bin/env python3
"""The session encoder's libvpx options against CPU, RTP packets and quality (issue 14).

    python bench/encode_options_bench.py [--frames 160] [--static-thresh 1 100 300 800]
    python bench/encode_options_bench.py --bitrates 1200000 800000 600000 --static-thresh 300

Real mesh-engine frames with idle motion (bench/encode_bench.py's frames), 512x512, each
encoded by one ``SessionEncoder`` per configuration, configurations interleaved frame by frame.
Per configuration: median thread CPU ms per frame (RGB -> I420 included), mean kB per frame,
mean RTP packets per frame (payloads of at most 1200 bytes: what a sender packetizes and
every receiver unpacks), PSNR of the decoded frame (median and min, dB).
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

import av
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import encode_bench  # noqa: E402
from streamer.sessions import video  # noqa: E402

RTP_PAYLOAD = 1200
WARM_UP = 10


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=160)
    p.add_argument("--static-thresh", nargs="+", default=["1", "100", "300", "800"])
    p.add_argument("--bitrates", type=int, nargs="+", default=[video.BITRATE["vp8"]])
    args = p.parse_args()
    frames = encode_bench.frames(args.frames)
    configs = [(st, br) for br in args.bitrates for st in args.static_thresh]
    encoders, decoders = {}, {}
    for st, br in configs:
        video.VP8_OPTIONS["static-thresh"] = st
        video.BITRATE["vp8"] = br
        enc = video.SessionEncoder("vp8", 512, 25)
        enc._ctx = video._context("vp8", 512, 25)  # built now, with these options
        encoders[(st, br)] = enc
        decoders[(st, br)] = av.CodecContext.create("vp8", "r")
    res = {c: {"cpu": [], "bytes": [], "packets": [], "psnr": []} for c in configs}
    for i, f in enumerate(frames):
        for c in configs:
            data, cpu_s = encoders[c]._encode(f, i == 0, i * 3600)
            for dec in decoders[c].decode(av.Packet(data)):
                if i >= WARM_UP:
                    err = np.mean((dec.to_ndarray(format="rgb24").astype(np.float64) - f) ** 2)
                    res[c]["psnr"].append(10 * np.log10(255.0 ** 2 / max(err, 1e-9)))
            if i >= WARM_UP:
                res[c]["cpu"].append(cpu_s)
                res[c]["bytes"].append(len(data))
                res[c]["packets"].append(-(-len(data) // RTP_PAYLOAD))
    for (st, br), r in res.items():
        print(json.dumps({"static_thresh": st, "bitrate": br,
                          "cpu_ms_median": round(1000 * statistics.median(r["cpu"]), 2),
                          "kbytes_per_frame": round(statistics.mean(r["bytes"]) / 1000, 2),
                          "rtp_packets_per_frame": round(statistics.mean(r["packets"]), 2),
                          "psnr_db_median": round(statistics.median(r["psnr"]), 2),
                          "psnr_db_min": round(min(r["psnr"]), 2)}), flush=True)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""CPU per 20 ms audio frame of one WebRTC viewer's audio track, silence and speech (issue 14).

    python bench/audio_track_bench.py [--frames 1000]

Every viewer's track makes 50 frames a second, nearly always silent. Two paths, same input:
- "aiortc frame path" (before): the track returns an ``av.AudioFrame`` and aiortc's sender
  computes its audio level (a Python loop over the samples), resamples and Opus-encodes it
  (its executor hop not counted here);
- "packet path" (now, streamer/sessions/audio_track.py): the track reads the timeline,
  checks for sound, and hands over the canned silent packet, or encodes speech itself.
Thread CPU time (time.thread_time), median of --frames calls, interleaved.
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

from aiortc import rtp  # noqa: E402
from aiortc.codecs.opus import OpusEncoder  # noqa: E402

from streamer.sessions import audio_track as at  # noqa: E402

TB = fractions.Fraction(1, 48_000)


def aiortc_path(enc: OpusEncoder, samples: np.ndarray, pts: int) -> None:
    frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
    frame.sample_rate, frame.pts, frame.time_base = 48_000, pts, TB
    rtp.compute_audio_level_dbov(frame)
    enc.encode(frame)


def packet_path(ctx: list, samples: np.ndarray, pts: int) -> None:
    data = None
    if samples.any():
        if ctx[0] is None:
            ctx[0] = at._opus_encoder()
        data = at._encode(ctx[0], samples, pts)
    else:
        ctx[0] = None
    packet = av.Packet(data or at.silent_packet())
    packet.pts, packet.time_base = pts, TB
    OpusEncoder.pack(None, packet)  # what aiortc's sender does with it (no instance state)


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--frames", type=int, default=1000)
    args = p.parse_args()
    t = np.arange(at.FRAME_SAMPLES) / 48_000
    inputs = {"silence": np.zeros(at.FRAME_SAMPLES, np.int16),
              "speech (a tone)": (8000 * np.sin(2 * np.pi * 220 * t)).astype(np.int16)}
    at.silent_packet()
    for name, samples in inputs.items():
        enc, ctx = OpusEncoder(), [None]
        cost: dict[str, list[float]] = {"aiortc frame path (before)": [], "packet path (now)": []}
        for i in range(args.frames):
            pts = i * at.FRAME_SAMPLES
            c = time.thread_time()
            aiortc_path(enc, samples, pts)
            cost["aiortc frame path (before)"].append(time.thread_time() - c)
            c = time.thread_time()
            packet_path(ctx, samples, pts)
            cost["packet path (now)"].append(time.thread_time() - c)
        base = statistics.median(cost["aiortc frame path (before)"])
        for k, v in cost.items():
            m = statistics.median(v)
            print(json.dumps({"input": name, "path": k, "cpu_us_median": round(1e6 * m, 1),
                              "vs_before": round(m / base, 3)}), flush=True)


if __name__ == "__main__":
    main()

"""How frames come back from the engine process: shared memory vs pipe, vs in-process.

    python bench/engine_ipc_bench.py [--calls 20] [--rounds 5]

Three mesh engines on the same portrait: a ProcessEngine with its shared-memory frame buffer,
one whose buffer is too small so every frame is pickled through the pipe, and the engine in
this process (the baseline; cv2 single-threaded like the child). Rounds are interleaved;
the figure is the median wall time of one render call (batch 1 and 4, 512x512 crop).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.motion import Motion  # noqa: E402
from streamer.runtime.engine_factory import EngineRequest, build_engine  # noqa: E402
from streamer.runtime.engine_process import ProcessEngine  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--calls", type=int, default=20)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    import cv2

    cv2.setNumThreads(1)
    req = EngineRequest("mesh", "cpu")
    image = np.asarray(Image.open(io.BytesIO(sample_portrait_bytes("astronaut"))).convert("RGB"))
    shm, pipe, local = ProcessEngine(req), ProcessEngine(req, frame_buffer_bytes=1), build_engine(req)
    try:
        engines = {"in-process (baseline)": local, "process, shared memory": shm,
                   "process, pipe": pipe}
        sources = {k: e.prepare(image) for k, e in engines.items()}
        for batch in (1, 4):
            ms: dict[str, list[float]] = {k: [] for k in engines}
            for _ in range(args.rounds):
                for k, e in engines.items():
                    jobs = [(sources[k], Motion.emotion("happy", 0.2 * i + 0.1)) for i in range(batch)]
                    e.render(jobs)
                    for _ in range(args.calls):
                        t = time.perf_counter()
                        e.render(jobs)
                        ms[k].append(1000 * (time.perf_counter() - t))
            base = float(np.median(ms["in-process (baseline)"]))
            for k, v in ms.items():
                med = float(np.median(v))
                print(json.dumps({"batch": batch, "mode": k, "median_ms": round(med, 2),
                                  "vs_baseline": round(med / base, 2)}), flush=True)
    finally:
        shm.close()
        pipe.close()


if __name__ == "__main__":
    main()

"""Timing of the mesh engine: prepare per portrait and per-frame render, on one thread.

Used by `liveportrait-avatar bench --engine mesh`. Medians, not means: on a shared
machine a few preempted frames must not decide the result.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import replace
from typing import Any

import cv2
import numpy as np

from .motion import EMOTIONS, IdleState, Motion


def _single_thread() -> None:
    cv2.setNumThreads(1)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # torch is optional for the mesh engine
        pass


def bench_motions() -> list[Motion]:
    """A streaming-like mix: each emotion at two intensities, with blink, sway and gaze."""
    motions = []
    for i, name in enumerate(EMOTIONS):
        for intensity in (0.5, 1.0):
            m = Motion.emotion(name, intensity).with_controls(gaze_x=0.3 * ((i % 3) - 1))
            motions.append(replace(m, idle=IdleState(blink=0.5 if i % 2 else 0.0, yaw=2.0, roll=-1.5,
                                                     pitch=1.0, breath=0.5)))
    return motions


def _percentile(xs: list[float], q: float) -> float:
    s = sorted(xs)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


def run_mesh_bench(engine: Any, images: list[np.ndarray], frames: int = 200) -> dict[str, Any]:
    """Time ``engine.prepare`` on each image and ``engine.render`` (one frame per call).

    Returns prepare_ms (median over images, after one warm-up prepare that loads the
    landmark model), render_ms_median, render_ms_p95, fps (1000 / median), and the setup.
    """
    if not images:
        raise ValueError("run_mesh_bench needs at least one image")
    _single_thread()
    engine.prepare(images[0])  # warm-up: builds the FaceMesh graph once
    prepare_ms: list[float] = []
    sources = []
    for img in images:
        t0 = time.perf_counter()
        sources.append(engine.prepare(img))
        prepare_ms.append((time.perf_counter() - t0) * 1000)
    motions = bench_motions()
    for src in sources:  # warm-up render per source
        engine.render([(src, motions[0])])
    # Baseline, interleaved with the frames so both see the same machine load: one bare
    # bilinear cv2.remap of a 512x512 RGB image, the floor of any dense warp at that size.
    size = engine.info.output_size
    base_img = np.ascontiguousarray(np.resize(images[0], (size, size, 3)))
    gx, gy = np.meshgrid(np.arange(size, dtype=np.float32), np.arange(size, dtype=np.float32))
    base_map = np.dstack([gx + 0.25, gy + 0.25])
    render_ms: list[float] = []
    render_cpu_ms: list[float] = []
    base_ms: list[float] = []
    for i in range(max(1, frames)):
        job = (sources[i % len(sources)], motions[i % len(motions)])
        c0, t0 = time.thread_time(), time.perf_counter()
        engine.render([job])
        render_ms.append((time.perf_counter() - t0) * 1000)
        render_cpu_ms.append((time.thread_time() - c0) * 1000)
        t0 = time.perf_counter()
        cv2.remap(base_img, base_map, None, cv2.INTER_LINEAR)
        base_ms.append((time.perf_counter() - t0) * 1000)
    med = statistics.median(render_ms)
    base = statistics.median(base_ms)
    return {
        "engine": getattr(engine, "name", "?"),
        "images": len(images),
        "frames": len(render_ms),
        "threads": 1,
        "output_size": engine.info.output_size,
        "prepare_ms": round(statistics.median(prepare_ms), 2),
        "prepare_ms_max": round(max(prepare_ms), 2),
        "render_ms_median": round(med, 3),
        "render_ms_p95": round(_percentile(render_ms, 0.95), 3),
        # The 10th percentile: frames that ran uncontended, for a machine with other work on it.
        "render_ms_p10": round(_percentile(render_ms, 0.10), 3),
        # CPU time of the rendering thread: what one core spends per frame, unaffected
        # by other processes preempting us on a shared machine.
        "render_cpu_ms_median": round(statistics.median(render_cpu_ms), 3),
        "fps": round(1000.0 / med, 1) if med > 0 else float("inf"),
        "baseline_remap_ms_median": round(base, 3),
        "baseline_remap_ms_p10": round(_percentile(base_ms, 0.10), 3),
        "render_vs_remap": round(med / base, 2) if base > 0 else float("inf"),
    }

#!/usr/bin/env python3
"""One prepared benchmark for a lent GPU machine (also runs on CPU with --device cpu --quick).

    python bench/gpu.py                        # CUDA: full run, < 4 min on an H100
    python bench/gpu.py --device cpu --quick   # CPU smoke run (batch 1, fp32, few repeats)

Steps:
1. generate the seed-1 synthetic checkpoints with the reference make_checkpoints.py and check
   their tensor digests;
2. run our conformance in float32 with TF32 off and compare every array with the reference
   compare_outputs.py + tolerances.json (exit code 1 if anything fails);
3. time warp_decode + stitching at batch 1, 4 and 16 in fp32 and fp16 (CUDA events, median of
   >= 50 runs after warm-up), and the prepare stage (F + M on one 256x256 crop);
4. print a table of ms per frame and frames per second.

Imports only torch, numpy and our engine's torch path: no aiortc, av, mediapipe or OpenCV.
The reference folder is found at ../shared/liveportrait_reference, ./shared/liveportrait_reference
or --reference DIR.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Callable

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.liveportrait import conformance, kp_math  # noqa: E402
from engine.liveportrait.emotions import KeypointEdit  # noqa: E402
from engine.liveportrait.loader import load_models  # noqa: E402
from engine.liveportrait.pipeline import LivePortraitCore, Precision, warp_decode  # noqa: E402

FORBIDDEN = ("aiortc", "av", "mediapipe", "cv2")


def _find_reference(arg: str | None) -> Path:
    candidates = [Path(arg)] if arg else [REPO.parent / "shared" / "liveportrait_reference",
                                          REPO / "shared" / "liveportrait_reference"]
    for c in candidates:
        if (c / "make_checkpoints.py").is_file():
            return c
    raise SystemExit(f"reference folder not found (tried {', '.join(map(str, candidates))}); use --reference")


def _module(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _timer(device: torch.device) -> Callable[[Callable[[], object], int, int], list[float]]:
    def run(fn: Callable[[], object], warmup: int, repeats: int) -> list[float]:
        for _ in range(warmup):
            fn()
        times: list[float] = []
        if device.type == "cuda":
            torch.cuda.synchronize(device)
            for _ in range(repeats):
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                fn()
                end.record()
                end.synchronize()
                times.append(start.elapsed_time(end))
        else:
            for _ in range(repeats):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1e3)
        return times
    return run


def _conformance(ckpt: Path, ref: Path, work: Path, dev: torch.device) -> bool:
    t0 = time.perf_counter()
    cand = work / "candidate.npz"
    conformance.run(ckpt, ref / "cases.npz", cand, str(dev))
    cmp_mod = _module(ref / "compare_outputs.py")
    tols = json.loads((ref / "tolerances.json").read_text())["arrays"]
    with np.load(ref / "cases.npz") as cases, np.load(cand) as got:
        passed = bool(cmp_mod.compare(cases, got, tols, strict=True))  # prints one row per array
    print(f"[2] conformance ({dev}, float32, TF32 off): {'PASS' if passed else 'FAIL'} "
          f"in {time.perf_counter() - t0:.1f} s", flush=True)
    return passed


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="batch 1, fp32 only, 1 warm-up + 3 runs")
    p.add_argument("--reference", default=None, help="folder of the LivePortrait conformance reference")
    p.add_argument("--checkpoints", default=None, help="use these checkpoints instead of generating them")
    p.add_argument("--batches", default=None, help="comma-separated batch sizes (default 1,4,16)")
    p.add_argument("--repeats", type=int, default=None, help="timed runs per row (default 50)")
    p.add_argument("--compile", action="store_true", help="also time torch.compile'd W and G (fp16)")
    p.add_argument("--skip-conformance", action="store_true",
                   help="timings only (the exit code then ignores conformance)")
    p.add_argument("--json", default=None, help="write the results table here as JSON")
    args = p.parse_args(argv)

    dev = torch.device(args.device)
    ref = _find_reference(args.reference)
    conformance.set_strict_fp32()
    print(f"torch {torch.__version__}, device {dev}"
          + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else "")
          + f", reference {ref}", flush=True)

    # 1. checkpoints
    tmp = tempfile.TemporaryDirectory(prefix="lp_bench_")
    if args.checkpoints:
        ckpt = Path(args.checkpoints)
    else:
        ckpt = Path(tmp.name)
        t0 = time.perf_counter()
        _, digests = _module(ref / "make_checkpoints.py").write_checkpoints(str(ckpt), 1, return_digests=True)
        want = json.loads((ref / "checkpoint_digests_seed1.json").read_text())["tensor_sha256"]
        ok = digests == want
        print(f"[1] checkpoints generated in {time.perf_counter() - t0:.1f} s; digests "
              f"{'match' if ok else 'DO NOT MATCH'}", flush=True)
        if not ok:
            return 1

    # 2. conformance, float32, TF32 off
    passed = True
    if not args.skip_conformance:
        passed = _conformance(ckpt, ref, Path(tmp.name), dev)

    # 3. timings
    quick = args.quick
    batches = [int(b) for b in args.batches.split(",")] if args.batches else ([1] if quick else [1, 4, 16])
    repeats = args.repeats or (3 if quick else 50)
    warmup = 1 if quick else 10
    precisions: list[tuple[str, torch.dtype | None]] = [("fp32", None)]
    if dev.type == "cuda" and not quick:
        precisions.append(("fp16", torch.float16))
    timer = _timer(dev)
    models = load_models(ckpt, dev)
    with np.load(ref / "cases.npz") as cases:
        crop = cases["img_u8_0"]
    results: list[dict[str, object]] = []
    for pname, dtype in precisions:
        core = LivePortraitCore(models, Precision(dev, dtype, channels_last=dtype is not None))
        src = core.prepare_crop(crop, (0.3, 0.3), 0.05)
        prep = timer(lambda: core.prepare_crop(crop, (0.3, 0.3), 0.05), warmup, repeats)
        results.append({"stage": "prepare (F+M)", "precision": pname, "batch": 1,
                        "median_ms": statistics.median(prep)})
        for b in batches:
            feat = src.feature_3d.expand(b, -1, -1, -1, -1).contiguous()
            x_s = src.x_s.expand(b, -1, -1).contiguous()
            x_d = core.driving_keypoints([src] * b, [KeypointEdit(smile=0.8, d_yaw=5.0)] * b)

            @torch.no_grad()
            def step() -> torch.Tensor:
                with core.precision.ctx():
                    x_st = kp_math.stitching(models.stitching.stitching, x_s, x_d)
                    return warp_decode(models, feat, x_s, x_st)["out"]

            try:
                ms = timer(step, warmup, repeats)
            except torch.cuda.OutOfMemoryError:
                results.append({"stage": "warp_decode+stitching", "precision": pname, "batch": b,
                                "median_ms": None})
                torch.cuda.empty_cache()
                continue
            results.append({"stage": "warp_decode+stitching", "precision": pname, "batch": b,
                            "median_ms": statistics.median(ms)})
            print(f"    {pname} batch {b}: {statistics.median(ms):.2f} ms", flush=True)
            feat = x_s = None  # frees this batch's copies before the next batch allocates its own
    if args.compile and dev.type == "cuda":
        core = LivePortraitCore(load_models(ckpt, dev), Precision(dev, torch.float16, channels_last=True))
        core.enable_compile()
        print("    compiling W and G (first calls are slow) ...", flush=True)
        src = core.prepare_crop(crop, (0.3, 0.3), 0.05)
        for b in batches:
            srcs = [src] * b
            edits = [KeypointEdit(smile=0.8)] * b
            ms = timer(lambda: core.render_batch(srcs, edits), 5, repeats)
            results.append({"stage": "render_batch (compiled)", "precision": "fp16", "batch": b,
                            "median_ms": statistics.median(ms)})
            print(f"    compiled fp16 batch {b}: {statistics.median(ms):.2f} ms", flush=True)

    # 4. table
    print(f"\n[3] timings on {dev}: median of {repeats} runs after {warmup} warm-up"
          + (" (CUDA events)" if dev.type == "cuda" else " (perf_counter)"))
    print("| stage | precision | batch | ms per call | ms per frame | frames/s |")
    print("|---|---|---|---|---|---|")
    for r in results:
        med = r["median_ms"]
        if med is None:
            print(f"| {r['stage']} | {r['precision']} | {r['batch']} | OOM | | |")
            continue
        per = float(med) / int(r["batch"])  # type: ignore[arg-type]
        print(f"| {r['stage']} | {r['precision']} | {r['batch']} | {float(med):.2f} | {per:.2f} | {1e3 / per:.1f} |")
    if args.json:
        Path(args.json).write_text(json.dumps({"device": str(dev), "passed": passed, "rows": results}, indent=1))

    leaked = [m for m in FORBIDDEN if m in sys.modules]
    print(f"\nimported media/network modules: {leaked or 'none'}")
    tmp.cleanup()
    return 0 if passed and not leaked else 1


if __name__ == "__main__":
    sys.exit(main())

"""REST latency against the real server (mesh engine, loopback), with the engine alone as baseline.

    .venv/bin/python bench/rest_bench.py [--n 30] [--json]

Every number is a median over n requests, measured by the client (wall clock, loopback HTTP,
multipart upload of matplotlib's grace_hopper.jpg, 61 KB). Ratios are against the engine's own
render time measured in the same run, so that a busy machine shifts both alike.
"""
from __future__ import annotations

import argparse
import asyncio
import io
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Awaitable, Callable

import aiohttp
import numpy as np
from aiohttp import web
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.motion import EMOTIONS, Motion  # noqa: E402
from streamer.app import create_app  # noqa: E402
from streamer.config import ServerConfig  # noqa: E402
from streamer.samples import sample_portrait_bytes  # noqa: E402
from avatar_testkit.pyclient import portrait_form as form  # noqa: E402




async def median_ms(n: int, fn: Callable[[int], Awaitable[None]]) -> float:
    times = []
    for i in range(n):
        t0 = time.perf_counter()
        await fn(i)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


async def run(n: int, tmp: Path) -> dict[str, float]:
    from engine.mesh import MeshEngine

    engine = MeshEngine()
    photo = sample_portrait_bytes("grace_hopper")
    image = np.asarray(Image.open(io.BytesIO(photo)).convert("RGB"))
    source = engine.prepare(image)  # also warms mediapipe up
    happy = Motion.emotion("happy", 0.8)

    async def engine_only(_: int) -> None:
        engine.render([(source, happy)])

    app = create_app(ServerConfig(port=0, output_dir=tmp), engine)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    base = f"http://127.0.0.1:{runner.addresses[0][1]}"
    out: dict[str, float] = {}
    try:
        async with aiohttp.ClientSession() as http:
            async def post(path: str, headers: dict[str, str] | None = None, image: bytes = photo,
                           **fields: str) -> None:
                async with http.post(base + path, data=form(image, **fields), headers=headers) as r:
                    assert r.status == 200, await r.text()
                    await r.read()

            await post("/render", emotion="happy")  # warm the cache and the server path
            out["engine_render_ms"] = await median_ms(n, engine_only)
            out["render_json_png_ms"] = await median_ms(n, lambda i: post("/render", emotion="happy"))
            out["render_accept_png_ms"] = await median_ms(
                n, lambda i: post("/render", {"Accept": "image/png"}, emotion="happy"))
            out["render_accept_jpeg_ms"] = await median_ms(
                n, lambda i: post("/render", {"Accept": "image/jpeg"}, emotion="happy"))
            # New bytes each time (a trailing comment after the JPEG's end): cache miss, full prepare.
            out["render_cold_prepare_ms"] = await median_ms(
                max(3, n // 6), lambda i: post("/render", {"Accept": "image/jpeg"},
                                               image=photo + f"bench-{i}-{time.time()}".encode(),
                                               emotion="happy"))
            all7 = ",".join(EMOTIONS)
            out["batch_7_json_ms"] = await median_ms(max(3, n // 3), lambda i: post(
                "/render/batch", emotions=all7))

            async def seven_singles(_: int) -> None:
                for e in EMOTIONS:
                    await post("/render", emotion=e)

            out["seven_singles_json_ms"] = await median_ms(max(3, n // 3), seven_singles)
    finally:
        await runner.cleanup()
    base_ms = out["engine_render_ms"]
    for key in list(out):
        if key.endswith("_ms") and key != "engine_render_ms" and not key.startswith(("batch", "seven")):
            out[key.replace("_ms", "_x_engine")] = out[key] / base_ms
    out["batch_vs_singles"] = out["batch_7_json_ms"] / out["seven_singles_json_ms"]
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=30)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    import tempfile

    with tempfile.TemporaryDirectory(prefix="rest-bench-") as tmp:
        result = asyncio.run(run(args.n, Path(tmp)))
    if args.json:
        print(json.dumps(result))
    else:
        for k, v in result.items():
            print(f"{k:28s} {v:9.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

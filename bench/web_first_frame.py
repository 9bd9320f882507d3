"""Time to first frame of the demo page, WebRTC vs the WebSocket-JPEG fallback (the baseline).

    python bench/web_first_frame.py --loads 7

Starts the real server (mesh engine) on a loopback port, then loads the page in headless
Chromium `--loads` times per transport, each in a fresh browser context, alternating the
transports so that drift hits both alike. Reports the median ms from navigation start to
the first frame on screen, and to the page being "live" with 20 frames shown.
"""
from __future__ import annotations

import argparse
import asyncio
import statistics

from aiohttp import web

CHROMIUM = "/usr/bin/chromium"
ARGS = ["--disable-features=WebRtcHideLocalIpsWithMdns"]


async def one_load(browser, url: str, transport: str) -> tuple[float, float, dict]:
    ctx = await browser.new_context(viewport={"width": 1280, "height": 880})
    try:
        page = await ctx.new_page()
        await page.goto(url + ("?transport=websocket" if transport == "websocket" else ""))
        await page.wait_for_function(
            "(t) => window.avatarDemo && avatarDemo.transport === t && avatarDemo.framesShown >= 20",
            arg=transport, timeout=20_000)
        first, now, steps = await page.evaluate(
            "() => [avatarDemo.firstFrameMs, performance.now(), avatarDemo.timings]")
        return float(first), float(now), steps
    finally:
        await ctx.close()


async def run(loads: int) -> None:
    from playwright.async_api import async_playwright

    from streamer.app import create_app
    from streamer.config import ServerConfig
    from streamer.runtime.engine_factory import EngineRequest, build_engine

    engine = await asyncio.to_thread(build_engine, EngineRequest(engine="mesh", device="cpu"))
    app = create_app(ServerConfig(host="127.0.0.1", port=0), engine)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}/"
    results: dict[str, list[tuple[float, float, dict]]] = {"webrtc": [], "websocket": []}
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            await one_load(browser, url, "webrtc")  # warm-up: first portrait prepare, JIT, caches
            for _ in range(loads):
                for transport in ("websocket", "webrtc"):
                    results[transport].append(await one_load(browser, url, transport))
            await browser.close()
    finally:
        await runner.cleanup()
    base = statistics.median(f for f, _, _ in results["websocket"])
    steps = ("sample_loaded", "session_created", "ws_hello")
    print(f"loads per transport: {loads}; medians in ms after navigation start")
    print(f"{'transport':<10} " + " ".join(f"{s:>16}" for s in steps)
          + f" {'first_frame':>12} {'20 frames':>10} {'first vs ws':>12}")
    for transport, rows in results.items():
        first = statistics.median(f for f, _, _ in rows)
        twenty = statistics.median(n for _, n, _ in rows)
        parts = " ".join(f"{statistics.median(t[s] for _, _, t in rows):>16.0f}" for s in steps)
        print(f"{transport:<10} {parts} {first:>12.0f} {twenty:>10.0f} {first / base:>12.2f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--loads", type=int, default=7)
    asyncio.run(run(p.parse_args().loads))


if __name__ == "__main__":
    main()

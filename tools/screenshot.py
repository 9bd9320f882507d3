"""Make docs/demo.png: the demo page, live, in headless Chromium (run with `make screenshot`).

Starts the real server on a free loopback port with the mesh engine, opens the page,
waits for WebRTC frames, sets a blend of emotions so the face shows what the page does,
and saves a PNG under the size budget (palette-reduced if needed, then scaled).
"""
from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

from aiohttp import web
from PIL import Image

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
MAX_BYTES = 300 * 1024 - 4096  # the README's budget, with a margin


def fit_png(png: bytes, max_bytes: int = MAX_BYTES) -> bytes:
    """The smallest faithful PNG we can make under max_bytes: optimised, then 256 colours, then smaller."""
    img = Image.open(io.BytesIO(png)).convert("RGB")

    def encode(im: Image.Image) -> bytes:
        buf = io.BytesIO()
        im.save(buf, format="PNG", optimize=True)
        return buf.getvalue()

    out = encode(img)
    scale = 1.0
    while len(out) > max_bytes:
        im = img if scale == 1.0 else img.resize((round(img.width * scale), round(img.height * scale)),
                                                  Image.Resampling.LANCZOS)
        out = encode(im.quantize(colors=256, method=Image.Quantize.MEDIANCUT,
                                 dither=Image.Dither.FLOYDSTEINBERG))
        scale -= 0.1
        if scale < 0.5:
            raise SystemExit(f"cannot fit the screenshot under {max_bytes} bytes")
    return out


async def capture(out: Path, engine_name: str, width: int, height: int) -> int:
    from playwright.async_api import async_playwright

    from streamer.app import create_app
    from streamer.config import ServerConfig
    from streamer.runtime.engine_factory import EngineRequest, build_engine

    engine = await asyncio.to_thread(build_engine, EngineRequest(engine=engine_name, device="cpu"))
    app = create_app(ServerConfig(host="127.0.0.1", port=0), engine)
    runner = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(
                executable_path=CHROMIUM, args=["--disable-features=WebRtcHideLocalIpsWithMdns"])
            page = await browser.new_page(viewport={"width": width, "height": height})
            await page.goto(f"http://127.0.0.1:{port}/")
            await page.wait_for_function(
                "() => window.avatarDemo && avatarDemo.transport === 'webrtc' && avatarDemo.framesShown > 10",
                timeout=20_000)
            # A visible, friendly expression: mostly happy with a little surprise.
            for slider, presses in (("#emo-happy", 80), ("#emo-surprised", 25)):
                await page.focus(slider)
                for _ in range(presses):
                    await page.keyboard.press("ArrowRight")
            await page.evaluate("() => document.activeElement && document.activeElement.blur()")
            await page.wait_for_function(
                "() => /^\\d+ ms$/.test(document.getElementById('stat-latency').textContent)", timeout=10_000)
            await page.wait_for_timeout(1500)  # let the transition finish and the stats fill in
            png = await page.screenshot()
            await browser.close()
    finally:
        await runner.cleanup()
    data = fit_png(png)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(data)
    return len(data)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, default=REPO / "docs" / "demo.png")
    p.add_argument("--engine", default="mesh")
    p.add_argument("--width", type=int, default=1280)
    p.add_argument("--height", type=int, default=880)
    args = p.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"{CHROMIUM} is missing: apt-get install -y chromium", file=sys.stderr)
        return 2
    size = asyncio.run(capture(args.out, args.engine, args.width, args.height))
    print(f"wrote {args.out} ({size / 1024:.0f} KB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

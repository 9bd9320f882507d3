"""The demo page in real headless Chromium against the real server (mesh engine).

One browser for the module, a fresh context (a fresh "user") per test. Video frames are
counted with requestVideoFrameCallback and sampled through a canvas. Nothing here times a
rate or a latency: tests wait for frames and changes (counted in frames), and print the
figures; bench/web_first_frame.py and bench/sessions_bench.py measure them.
"""
from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import re
import time
from pathlib import Path
from typing import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio
from PIL import Image
import aiohttp

from avatar_testkit.browsers import CHROMIUM as CHROMIUM_BROWSER
from avatar_testkit.wait import wait_until
from page_probes import (CHANGE_WITHIN_FRAMES, JS_ARM, JS_FRAME_PNG, JS_PLAYBACK, JS_REGION_DIFF,
                         JS_VIDEO_FPS, JS_WAIT_CHANGE, JS_WAIT_STILL, lips_box, png_data_url_to_rgb)

playwright_api = pytest.importorskip("playwright.async_api")

CHROMIUM = CHROMIUM_BROWSER.path
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
# WebRtcHideLocalIpsWithMdns: without it Chromium hides host candidates behind mDNS names and
# ICE starts ~1 s late. LocalNetworkAccessChecks: a document answered through Playwright's
# route.fulfill (the strict-CSP check) has no address space, so Chromium would block its
# WebSocket to 127.0.0.1; the real page comes from loopback itself, where the check never bites.
CHROMIUM_ARGS = ["--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks"]
VIEWPORT = {"width": 1280, "height": 900}
# The strict policy the page is written for (no inline script/style, no eval): any violation
# shows up as a console error, which the tests treat as a failure.
STRICT_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
              "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
              "frame-ancestors 'none'; form-action 'self'")

# Marked "browser": tests/conftest.py prints a loud banner at the end of a run that skipped them.
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not CHROMIUM_BROWSER.available(), reason=CHROMIUM_BROWSER.skip_reason())]

@pytest_asyncio.fixture(scope="module")
async def browser() -> AsyncIterator[object]:
    pw = await playwright_api.async_playwright().start()
    b = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    try:
        yield b
    finally:
        await b.close()
        await pw.stop()


class PageRun:
    """One page in its own context, with every console error and page error recorded."""

    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.sent: list[str | bytes] = []  # every WebSocket message the page sent
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("websocket", lambda ws: ws.on("framesent", lambda payload: self.sent.append(payload)))


@pytest_asyncio.fixture
async def open_page(browser, server):
    contexts = []

    async def _open(init_script: str | None = None, query: str = "", csp: str | None = None,
                    **ctx_args) -> PageRun:
        ctx = await browser.new_context(viewport=VIEWPORT, **ctx_args)
        contexts.append(ctx)
        if init_script:
            await ctx.add_init_script(init_script)
        if csp:
            async def add_csp(route) -> None:
                response = await route.fetch()
                await route.fulfill(response=response,
                                    headers={**response.headers, "content-security-policy": csp})

            await ctx.route(f"{server.base_url}/{query}", add_csp)
        run = PageRun(await ctx.new_page())
        await run.page.goto(f"{server.base_url}/{query}")
        return run

    try:
        yield _open
    finally:
        for ctx in contexts:
            # Leave like a user (pagehide deletes the session), so that no orphaned session
            # keeps the shared module server rendering for the next tests.
            for page in ctx.pages:
                with contextlib.suppress(Exception):
                    await page.goto("about:blank")
            await ctx.close()


async def wait_video(page, timeout_ms: int = 30_000) -> None:
    await page.wait_for_function(
        "() => window.avatarDemo && avatarDemo.transport === 'webrtc' && avatarDemo.framesShown > 3",
        timeout=timeout_ms)


async def frame_rgb(page) -> np.ndarray:
    return png_data_url_to_rgb(await page.evaluate(JS_FRAME_PNG))


async def mouth_box(page) -> tuple[int, int, int, int]:
    """x, y, w, h around the lips of the face in the current frame (FaceMesh on that frame)."""
    return await asyncio.to_thread(lips_box, await frame_rgb(page))


async def still_streaming(page) -> None:
    """New frames keep arriving (the rate is the first test's business)."""
    n = await page.evaluate("() => avatarDemo.framesShown")
    await page.wait_for_function("(n) => avatarDemo.framesShown >= n + 10", arg=n, timeout=30_000)


async def session_id(page) -> str:
    return await page.evaluate("() => avatarDemo.sessionId")


async def test_page_loads_and_plays_webrtc(open_page):
    run = await open_page()  # under the server's own policy header, which must be STRICT_CSP
    page = run.page
    assert (await page.request.get(page.url)).headers["content-security-policy"] == STRICT_CSP
    await wait_video(page)
    await page.wait_for_function("() => avatarDemo.framesShown > 25", timeout=60_000)  # past the start-up
    # The video plays: its clock advances and new frames keep being presented and decoded.
    before = await page.evaluate(JS_PLAYBACK)
    await page.wait_for_function("(n) => avatarDemo.framesShown >= n + 50", arg=before["shown"],
                                 timeout=60_000)
    after = await page.evaluate(JS_PLAYBACK)
    assert after["time"] > before["time"] and after["decoded"] > before["decoded"], (before, after)
    assert (after["width"], after["height"]) == (512, 512) and after["readyState"] >= 2, after
    rate = await page.evaluate(JS_VIDEO_FPS, 1000)
    print(f"Chromium: {rate:.1f} fps shown (a figure; bench/web_first_frame.py measures it)")
    await page.wait_for_function("() => document.getElementById('stat-fps').textContent.includes('fps')")
    assert "WebRTC" in await page.text_content("#transport")
    assert await page.get_attribute("#conn", "data-state") == "live"
    ARTIFACTS.mkdir(exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / "web-demo.png"))
    assert await page.evaluate("() => document.querySelectorAll('.preset').length") == 8  # 7 + reset
    assert run.errors == []


# Keeps every RTCPeerConnection the page makes, so that a test can read its negotiated SDP.
JS_KEEP_PEERS = """
window.__peers = [];
const Native = window.RTCPeerConnection;
window.RTCPeerConnection = function (...args) { const pc = new Native(...args); window.__peers.push(pc); return pc; };
window.RTCPeerConnection.prototype = Native.prototype;
"""
PLAYOUT_DELAY = "http://www.webrtc.org/experiments/rtp-hdrext/playout-delay"


async def test_video_is_negotiated_for_display_once_decoded(open_page):
    """The server accepts Chromium's playout-delay extension for the video (min = max = 0:
    no smoothing delay before a frame is shown; bench/README.md measures what it buys), and
    the video still plays with it."""
    run = await open_page(init_script=JS_KEEP_PEERS)
    page = run.page
    await wait_video(page)
    sections = await page.evaluate("""() => {
      const pc = window.__peers[window.__peers.length - 1];
      return pc.remoteDescription.sdp.split(/\\r?\\n(?=m=)/).slice(1); }""")
    video = [s for s in sections if s.startswith("m=video")]
    audio = [s for s in sections if s.startswith("m=audio")]
    assert len(video) == 1 and any(re.fullmatch(r"a=extmap:\d+ " + re.escape(PLAYOUT_DELAY), line.strip())
                                   for line in video[0].splitlines()), video
    assert all(PLAYOUT_DELAY not in s for s in audio)  # video only
    await still_streaming(page)
    played = await page.evaluate(JS_PLAYBACK)
    assert (played["width"], played["height"]) == (512, 512) and played["decoded"] > 0, played
    assert run.errors == []


async def test_happy_slider_changes_the_mouth(open_page):
    run = await open_page()
    page = run.page
    await wait_video(page)
    # Idle motion off, so that only the slider moves the face.
    await page.click("label[for=idle-toggle]")
    assert not await page.is_checked("#idle-toggle")
    box = await mouth_box(page)
    assert await page.evaluate(JS_WAIT_STILL, [*box, 10, 1.0]), "the face never came to rest"
    await page.evaluate(JS_ARM, [*box, "emo-happy"])
    await page.evaluate(JS_WAIT_STILL, [*box, 5, 1.0])  # a few frames for the noise figure
    noise = await page.evaluate(JS_REGION_DIFF)
    # Keyboard, like a user without a mouse: End moves a range input to its maximum.
    await page.focus("#emo-happy")
    await page.keyboard.press("End")
    assert await page.input_value("#emo-happy") == "1"
    result = await page.evaluate(JS_WAIT_CHANGE, [max(4.0, 4 * noise), CHANGE_WITHIN_FRAMES])
    assert result["ms"] is not None, \
        f"mouth region never changed in {result['frames']} frames (diff {result['diff']:.2f}, noise {noise:.2f})"
    print(f"Chromium: the mouth changed {result['ms']:.0f} ms ({result['frames']} frames) after the input")
    await page.wait_for_function(
        "() => /^\\d+ ms$/.test(document.getElementById('stat-latency').textContent)", timeout=30_000)
    assert await page.get_attribute(".preset[data-emotion=happy]", "aria-pressed") == "true"
    assert run.errors == []


async def test_upload_switches_face_and_a_faceless_photo_keeps_the_stream(open_page, astronaut_jpeg, cat_jpeg):
    run = await open_page()
    page = run.page
    await wait_video(page)
    first_id = await session_id(page)
    before = (await frame_rgb(page)).astype(np.int16)

    await page.set_input_files("#file-input", files=[
        {"name": "astronaut.jpg", "mimeType": "image/jpeg", "buffer": astronaut_jpeg}])
    await page.wait_for_function("(old) => avatarDemo.sessionId && avatarDemo.sessionId !== old", arg=first_id)
    new_id = await session_id(page)
    await page.wait_for_function("(n) => avatarDemo.framesShown > n + 10",
                                 arg=await page.evaluate("() => avatarDemo.framesShown"))
    after = (await frame_rgb(page)).astype(np.int16)
    assert np.abs(after - before).mean() > 20, "the face did not change after the upload"

    # A cat, dropped onto the page: a clear error, and the astronaut keeps streaming.
    await page.evaluate("""(b64) => {
      const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], 'chelsea.jpg', { type: 'image/jpeg' }));
      const stage = document.getElementById('stage');
      for (const type of ['dragenter', 'dragover', 'drop']) {
        stage.dispatchEvent(new DragEvent(type, { dataTransfer: dt, bubbles: true, cancelable: true }));
      }
    }""", base64.b64encode(cat_jpeg).decode())
    notice = page.locator("#notice")
    await notice.wait_for(state="visible")
    assert re.search(r"no face found", await notice.text_content(), re.I)
    assert await session_id(page) == new_id
    await still_streaming(page)
    # The browser logs the failed fetch (422) as a console error; nothing else may appear.
    assert [e for e in run.errors if "status of 422" not in e] == []


async def test_too_large_upload_is_refused_clearly(browser, start_server, grace_hopper_jpeg):
    # A small limit keeps the upload quick; the default page still fits under it.
    srv = await start_server(max_upload_mb=0.5)
    assert len(grace_hopper_jpeg) < 0.4 * 1024 * 1024
    ctx = await browser.new_context(viewport=VIEWPORT)
    try:
        run = PageRun(await ctx.new_page())
        page = run.page
        await page.goto(srv.base_url + "/")
        await wait_video(page)
        first = await session_id(page)
        await page.set_input_files("#file-input", files=[
            {"name": "huge.jpg", "mimeType": "image/jpeg", "buffer": b"\xff\xd8" + bytes(700 * 1024)}])
        await page.wait_for_function(
            "() => /file too large/i.test(document.getElementById('notice').textContent)", timeout=30_000)
        assert await session_id(page) == first
        await still_streaming(page)
        assert [e for e in run.errors if "status of 413" not in e] == []
    finally:
        await ctx.close()


async def test_websocket_fallback_when_webrtc_is_blocked(open_page):
    run = await open_page(init_script="delete window.RTCPeerConnection; delete window.webkitRTCPeerConnection;")
    page = run.page
    await page.wait_for_function(
        "() => window.avatarDemo && avatarDemo.transport === 'websocket' && avatarDemo.framesShown > 3",
        timeout=30_000)
    assert "WebSocket" in await page.text_content("#transport")
    assert await page.is_hidden("#video") and await page.is_visible("#canvas")
    n0 = await page.evaluate("() => avatarDemo.framesShown")
    # frames keep coming over the WebSocket
    await page.wait_for_function("(n) => avatarDemo.framesShown >= n + 8", arg=n0, timeout=30_000)
    # The canvas shows a picture, not a blank.
    spread = await page.evaluate("""() => {
      const c = document.getElementById('canvas');
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      let lo = 255, hi = 0; for (let i = 0; i < d.length; i += 4) { lo = Math.min(lo, d[i]); hi = Math.max(hi, d[i]); }
      return hi - lo; }""")
    assert spread > 100
    assert run.errors == []


def sent_messages_of(run: PageRun) -> list[dict]:
    return [json.loads(x) for x in run.sent if isinstance(x, str)]


def sent_messages(run: PageRun, mtype: str) -> list[dict]:
    return [m for m in (json.loads(x) for x in run.sent if isinstance(x, str)) if m.get("type") == mtype]


async def test_slider_drag_is_coalesced_snapshot_and_rest_still(open_page):
    run = await open_page(accept_downloads=True)
    page = run.page
    await wait_video(page)
    # Accessible names: every control is reachable by role and name, nothing is unlabelled.
    for name in ("Neutral", "Happy", "Sad", "Surprised", "Angry", "Disgusted", "Fearful", "Master intensity",
                 "Transition time", "Smile", "Mouth open", "Gaze left-right", "Yaw"):
        assert await page.get_by_role("slider", name=name, exact=True).count() == 1, name
    assert await page.get_by_role("switch", name=re.compile("Idle motion")).count() == 1
    for name in ("Upload portrait", "Snapshot", "Reset", "Happy"):
        assert await page.get_by_role("button", name=name, exact=True).count() == 1, name
    unlabelled = await page.evaluate("""() => [...document.querySelectorAll('input, select, button')]
      .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label') && !e.textContent.trim())
      .map((e) => e.id || e.outerHTML.slice(0, 60))""")
    assert unlabelled == []
    # 60 key presses as fast as the browser takes them: a fast drag.
    await page.focus("#emo-sad")
    t0 = time.monotonic()
    for _ in range(60):
        await page.keyboard.press("ArrowRight")
    span = time.monotonic() - t0
    # the drag's last value goes out (after the page's coalescing interval)
    await wait_until(lambda: (m := sent_messages(run, "set_emotions"))
                     and m[-1]["weights"]["sad"] == pytest.approx(0.6))
    msgs = sent_messages(run, "set_emotions")
    # Coalesced: at most ~30 messages a second of dragging, far fewer than the 60 presses. An
    # upper bound that load cannot break: a slower machine stretches the span and sends fewer.
    assert 2 <= len(msgs) <= span * 30 + 2, f"{len(msgs)} messages in {span:.2f} s"
    assert msgs[-1]["weights"]["sad"] == pytest.approx(0.6)  # the newest value always goes out
    assert msgs[-1]["transition_ms"] == 250

    async with page.expect_download() as dl_info:
        await page.click("#snapshot-btn")
    dl = await dl_info.value
    assert dl.suggested_filename.endswith(".png")
    snap = Image.open(await dl.path())
    assert snap.format == "PNG" and snap.size == (512, 512)

    await page.click("#render-panel summary")
    await page.select_option("#render-format", "webp")
    await page.click("#render-btn")
    await page.wait_for_function(
        "() => { const i = document.getElementById('render-img'); return !i.hidden && i.naturalWidth > 0; }",
        timeout=15_000)
    assert (await page.get_attribute("#render-download", "download")).endswith(".webp")
    assert "Rendered happy" in await page.text_content("#render-status")
    assert run.errors == []


async def test_recovers_a_deleted_session_and_deletes_on_tab_close(open_page, server):
    run = await open_page()
    page = run.page
    await wait_video(page)
    first = await session_id(page)
    async with aiohttp.ClientSession() as http:
        async with http.delete(f"{server.base_url}/sessions/{first}") as r:
            assert r.status == 200
        # The socket closes (4000, "deleted"); the page starts a new session with the same photo.
        await page.wait_for_function("(old) => avatarDemo.sessionId && avatarDemo.sessionId !== old",
                                     arg=first, timeout=30_000)
        second = await session_id(page)
        n = await page.evaluate("() => avatarDemo.framesShown")
        await page.wait_for_function("(n) => avatarDemo.framesShown > n + 10", arg=n, timeout=30_000)
        # Leaving the page (pagehide) deletes the session on the server.
        await page.goto("about:blank")

        async def gone() -> bool:
            async with http.get(f"{server.base_url}/sessions/{second}") as r:
                return r.status == 404

        await wait_until(gone, interval=0.1, message="the session outlived the page")
    assert run.errors == []


async def test_keep_the_photos_expression_switch_starts_a_photo_baseline_session(open_page, server):
    """The switch changes what "no emotion" means; a session's baseline is fixed at creation, so
    the page moves to a new session on the same photo and deletes the old one."""
    run = await open_page()
    page = run.page
    await wait_video(page)
    first = await session_id(page)
    assert not await page.is_checked("#baseline-toggle")
    async with aiohttp.ClientSession() as http:

        async def baseline_of(sid: str) -> str | None:
            async with http.get(f"{server.base_url}/sessions/{sid}") as r:
                return (await r.json())["baseline"] if r.status == 200 else None

        assert await baseline_of(first) == "neutral"
        await page.click("label[for=baseline-toggle]")
        assert await page.is_checked("#baseline-toggle")
        await page.wait_for_function("(old) => avatarDemo.sessionId && avatarDemo.sessionId !== old",
                                     arg=first, timeout=30_000)
        second = await session_id(page)
        assert await baseline_of(second) == "photo"

        async def first_gone() -> bool:
            return await baseline_of(first) is None

        await wait_until(first_gone, interval=0.1, message="the old session was not deleted")
        await still_streaming(page)
        # And back: absolute again, on a third session.
        await page.click("label[for=baseline-toggle]")
        await page.wait_for_function("(old) => avatarDemo.sessionId && avatarDemo.sessionId !== old",
                                     arg=second, timeout=30_000)
        assert await baseline_of(await session_id(page)) == "neutral"
        await still_streaming(page)
    assert run.errors == []


async def test_reconnects_when_the_server_restarts(browser, start_server, mesh_engine):
    """The server goes away and comes back on the same port: the page finds its session gone,
    starts a new one with the same photo, and re-sends the sliders."""
    from aiohttp import web

    from streamer.app import create_app
    from streamer.config import ServerConfig

    srv = await start_server()
    ctx = await browser.new_context(viewport=VIEWPORT)
    runner2 = None
    try:
        run = PageRun(await ctx.new_page())
        page = run.page
        await page.goto(srv.base_url + "/")
        await wait_video(page)
        await page.focus("#emo-surprised")
        await page.keyboard.press("End")
        first = await session_id(page)
        await srv.stop()
        await page.wait_for_function(
            "() => document.getElementById('conn-text').textContent.startsWith('Reconnecting')")
        app = create_app(ServerConfig(host="127.0.0.1", port=srv.port, output_dir=srv.state.config.output_dir),
                         mesh_engine)
        runner2 = web.AppRunner(app, handle_signals=False, shutdown_timeout=2.0)
        await runner2.setup()
        await web.TCPSite(runner2, "127.0.0.1", srv.port).start()
        await page.wait_for_function(
            "(old) => avatarDemo.sessionId && avatarDemo.sessionId !== old && avatarDemo.transport === 'webrtc'",
            arg=first, timeout=20_000)
        n = await page.evaluate("() => avatarDemo.framesShown")
        await page.wait_for_function("(n) => avatarDemo.framesShown > n + 10", arg=n, timeout=30_000)
        # The new session got the sliders' target.
        sent = [m for m in sent_messages_of(run) if m.get("type") == "set_emotions"]
        assert sent and sent[-1]["weights"]["surprised"] == 1
        async with aiohttp.ClientSession() as http:
            async with http.get(f"{srv.base_url}/sessions/{await session_id(page)}") as r:
                state = await r.json()
        assert state["target"]["emotions"]["surprised"] == 1
        # Only the failed requests during the outage were logged, nothing from the page's code.
        assert [e for e in run.errors if "Failed to load resource" not in e
                and "WebSocket connection" not in e] == []
    finally:
        await ctx.close()
        if runner2 is not None:
            await runner2.cleanup()

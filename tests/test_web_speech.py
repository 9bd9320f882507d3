"""The demo page's Speak panel in real headless Chromium against the real server (mesh engine).

Chromium's fake microphone plays a WAV spoken by espeak-ng (in a loop), so "talk into the
microphone" is real: getUserMedia, the AudioWorklet, 48 kHz PCM over the session's WebSocket,
the server's lip sync, and the mouth moving in the page's WebRTC video. Nothing here times a
rate or a latency: the tests wait for events and for frames (the page's "audio in -> lips"
figure is printed, not asserted).
"""
from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import AsyncIterator

import numpy as np
import pytest
import pytest_asyncio

from avatar_testkit.browsers import CHROMIUM as CHROMIUM_BROWSER
from avatar_testkit.speech import mouth_opening
from avatar_testkit.wait import wait_until
from page_probes import JS_FRAME_PNG, JS_WAIT_STILL, lips_box, png_data_url_to_rgb

playwright_api = pytest.importorskip("playwright.async_api")

ESPEAK = shutil.which("espeak-ng")
SENTENCE = "Hello, I am your avatar. Papa, mama, and a bowl of soup. How are you today?"
VIEWPORT = {"width": 1280, "height": 900}
# Keep the page's peer connections reachable, to read the received audio's stats.
RECORD_PEERS = """window.__pcs = []; { const Orig = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Orig { constructor(...a) { super(...a); window.__pcs.push(this); } }; }"""
JS_AUDIO_STATS = """async () => {
  const out = [];
  for (const r of (await window.__pcs.at(-1).getStats()).values())
    if (r.kind === 'audio') out.push(JSON.stringify(r));
  return out.join(' | '); }"""
JS_AUDIO_ENERGY = """async () => {
  const pc = window.__pcs.at(-1); let e = 0;
  for (const r of (await pc.getStats()).values())
    if (r.type === 'inbound-rtp' && r.kind === 'audio') e = r.totalAudioEnergy || 0;
  return e; }"""

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not CHROMIUM_BROWSER.available(), reason=CHROMIUM_BROWSER.skip_reason()),
]
needs_espeak = pytest.mark.skipif(ESPEAK is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")


def espeak_wav(path: Path, text: str) -> bytes:
    subprocess.run([ESPEAK, "-s", "150", "-w", str(path), "--", text], check=True, timeout=60)
    return path.read_bytes()


@pytest_asyncio.fixture(scope="module")
async def mic_browser() -> AsyncIterator[object]:
    """Chromium whose microphone is a WAV of espeak-ng speech (looped), granted without a prompt."""
    with tempfile.TemporaryDirectory() as d:
        wav = Path(d) / "speech.wav"
        espeak_wav(wav, SENTENCE)
        pw = await playwright_api.async_playwright().start()
        b = await pw.chromium.launch(executable_path=CHROMIUM_BROWSER.path, args=[
            # see tests/test_web_page.py for the first flag
            "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks",
            "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-audio-capture={wav}",
            "--autoplay-policy=user-gesture-required",  # as a desktop browser: sound needs a click
        ])
        try:
            yield b
        finally:
            await b.close()
            await pw.stop()


class PageRun:
    def __init__(self, page) -> None:
        self.page = page
        self.errors: list[str] = []
        self.sent_text: list[str] = []
        self.sent_bytes = 0
        page.on("console", lambda m: self.errors.append(f"console: {m.text}") if m.type == "error" else None)
        page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        page.on("websocket", lambda ws: ws.on("framesent", self._sent))

    def _sent(self, payload: str | bytes) -> None:
        if isinstance(payload, str):
            self.sent_text.append(payload)
        else:
            self.sent_bytes += len(payload)


@pytest_asyncio.fixture
async def open_page(mic_browser, server):
    contexts = []

    async def _open() -> PageRun:
        ctx = await mic_browser.new_context(viewport=VIEWPORT, permissions=["microphone"])
        contexts.append(ctx)
        await ctx.add_init_script(RECORD_PEERS)
        run = PageRun(await ctx.new_page())
        await run.page.goto(f"{server.base_url}/")
        await run.page.wait_for_function(
            "() => window.avatarDemo && avatarDemo.transport === 'webrtc' && avatarDemo.framesShown > 3",
            timeout=30_000)
        return run

    try:
        yield _open
    finally:
        for ctx in contexts:
            for page in ctx.pages:  # pagehide deletes the session
                with contextlib.suppress(Exception):
                    await page.goto("about:blank")
            await ctx.close()


async def speech(page) -> dict:
    return await page.evaluate("() => avatarDemo.speech")


async def wait_event(page, etype: str, id_prefix: str, timeout_ms: int = 60_000) -> dict:
    handle = await page.wait_for_function(
        """([t, p]) => avatarDemo.speech.events.find((e) => e.type === t && String(e.id).startsWith(p))""",
        arg=[etype, id_prefix], timeout=timeout_ms)
    return await handle.json_value()


async def opening_now(page) -> float:
    frame = png_data_url_to_rgb(await page.evaluate(JS_FRAME_PNG))
    return await asyncio.to_thread(mouth_opening, frame)


async def rest_opening(page) -> float:
    """Idle motion off and the face still: how open the mouth is at rest."""
    await page.click("label[for=idle-toggle]")
    frame = png_data_url_to_rgb(await page.evaluate(JS_FRAME_PNG))
    box = await asyncio.to_thread(lips_box, frame)
    assert await page.evaluate(JS_WAIT_STILL, [*box, 10, 1.0]), "the face never came to rest"
    values = [await opening_now(page) for _ in range(3)]
    assert all(np.isfinite(values)), values
    return max(values)


async def wait_mouth_opens(page, rest: float, max_frames: int = 150) -> float:
    """Sample the shown video until the mouth opens well past its rest (counted in samples,
    not seconds). Returns the widest opening seen."""
    widest = rest
    for _ in range(max_frames):
        o = await opening_now(page)
        if np.isfinite(o):
            widest = max(widest, o)
            if widest > rest * 1.5 + 0.01:
                return widest
        await page.evaluate("() => new Promise((r) => document.getElementById('video').requestVideoFrameCallback(() => r()))")
    return widest


@needs_espeak
async def test_microphone_makes_the_mouth_move_and_the_voice_plays(open_page):
    run = await open_page()
    page = run.page
    rest = await rest_opening(page)
    s = await speech(page)
    assert s["audioTrack"] == "live"  # the offer asked for the avatar's voice
    assert not s["audioPlaying"]  # sound starts with a click, never by itself
    energy0 = await page.evaluate(JS_AUDIO_ENERGY)

    await page.click("#mic-btn")
    await page.wait_for_selector("#mic-btn[aria-pressed=true]")  # the microphone is on
    await wait_event(page, "speech_started", "mic-")
    widest = await wait_mouth_opens(page, rest)
    print(f"mouth opening: rest {rest:.4f}, widest while the mic talks {widest:.4f}")
    assert widest > rest * 1.5 + 0.01, f"the mouth did not move (rest {rest:.4f}, widest {widest:.4f})"

    s = await speech(page)
    assert s["micOn"] and s["chunksSent"] > 10 and s["audioPlaying"], s
    await page.wait_for_function(
        "() => /^\\d+ ms$/.test(document.getElementById('speech-latency').textContent)")
    print(f"Chromium: audio in -> lips {s['latencyMs']:.0f} ms (a figure, not a test)")
    # The page spoke the protocol: one speak at 48 kHz, then binary PCM of even length.
    speaks = [m for m in run.sent_text if '"speak"' in m]
    assert len(speaks) == 1 and '"sample_rate":48000' in speaks[0], speaks
    assert run.sent_bytes >= s["bytesSent"] > 0 and s["bytesSent"] % 2 == 0
    # The sound the browser receives is the speech (not only silence).
    async def energy_now() -> float:
        e = await page.evaluate(JS_AUDIO_ENERGY)
        samples.append(e)
        return e > energy0 + 1e-4

    samples: list[float] = []
    stats_dump = await page.evaluate(JS_AUDIO_STATS)
    await wait_until(energy_now, interval=0.2,
                     message=lambda: f"the received audio carried no sound: energy {samples[-5:]}, "
                                     f"stats {stats_dump}")
    print(f"received audio energy: {energy0:.5f} before the mic, {samples[-1]:.5f} while it talks "
          f"({len(samples)} polls)")

    # Stop: speak_end goes out and the utterance ends.
    await page.click("#mic-btn")
    assert await page.get_attribute("#mic-btn", "aria-pressed") == "false"
    assert any('"speak_end"' in m for m in run.sent_text)
    ended = await wait_event(page, "speech_ended", "mic-")
    assert ended["interrupted"] is False
    assert run.errors == []


@needs_espeak
async def test_text_box_speaks_with_espeak_and_interrupt_cuts_it(open_page):
    run = await open_page()
    page = run.page
    # The server has espeak-ng (this module skips without it), so the box is offered.
    await page.wait_for_function("() => avatarDemo.speech.ttsOffered")
    assert await page.is_visible("#say-text")
    await page.fill("#say-text", "Good morning. This is a long sentence, so that there is time "
                                 "to interrupt it before it ends. One, two, three, four, five.")
    await page.click("#say-btn")
    await wait_event(page, "speech_started", "say-")
    assert (await speech(page))["audioPlaying"]  # the click started the sound
    await page.click("#interrupt-btn")
    ended = await wait_event(page, "speech_ended", "say-")
    assert ended["interrupted"] is True
    assert any('"interrupt"' in m for m in run.sent_text)
    assert run.errors == []


@needs_espeak
async def test_an_uploaded_audio_file_is_said(open_page, tmp_path):
    run = await open_page()
    page = run.page
    rest = await rest_opening(page)
    wav = espeak_wav(tmp_path / "hello.wav", "Hello there, papa and mama. Have a lovely day.")
    await page.set_input_files("#speech-file", files=[
        {"name": "hello.wav", "mimeType": "audio/wav", "buffer": wav}])
    await wait_event(page, "speech_started", "file-")
    widest = await wait_mouth_opens(page, rest)
    assert widest > rest * 1.5 + 0.01, f"the mouth did not move (rest {rest:.4f}, widest {widest:.4f})"
    ended = await wait_event(page, "speech_ended", "file-")
    assert ended["interrupted"] is False
    assert "Queued" in await page.text_content("#speech-status")

    # Not audio: a clear message in the panel, and the session goes on.
    await page.set_input_files("#speech-file", files=[
        {"name": "noise.mp3", "mimeType": "audio/mpeg", "buffer": b"not audio at all" * 64}])
    await page.wait_for_function(
        "() => document.getElementById('speech-status').classList.contains('error')")
    n = await page.evaluate("() => avatarDemo.framesShown")
    await page.wait_for_function("(n) => avatarDemo.framesShown >= n + 10", arg=n, timeout=30_000)
    # The browser logs the refused upload (400) as a console error; nothing else may appear.
    assert [e for e in run.errors if "status of 400" not in e] == []



async def test_text_box_is_hidden_without_espeak(server, tmp_path, monkeypatch):
    """A server without espeak-ng (a PATH where none lives): /health says tts false, and the
    page offers the microphone and files but no text box."""
    monkeypatch.setenv("PATH", str(tmp_path))
    pw = await playwright_api.async_playwright().start()
    b = await pw.chromium.launch(executable_path=CHROMIUM_BROWSER.path, args=[
        "--disable-features=WebRtcHideLocalIpsWithMdns,LocalNetworkAccessChecks"])
    try:
        page = await b.new_page(viewport=VIEWPORT)
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        health = await page.request.get(f"{server.base_url}/health")
        assert (await health.json())["speech"] == {"tts": False}
        await page.goto(f"{server.base_url}/")
        await page.wait_for_function("() => window.avatarDemo && avatarDemo.framesShown > 3", timeout=30_000)
        await page.wait_for_function("() => avatarDemo.speech.ttsChecked")  # /health has answered
        assert await page.is_hidden("#say-form")
        assert await page.is_visible("#mic-btn") and await page.is_visible("#speech-file-btn")
        assert not (await page.evaluate("() => avatarDemo.speech"))["ttsOffered"]
        assert errors == []
        await page.goto("about:blank")  # pagehide deletes the session
    finally:
        await b.close()
        await pw.stop()

"""The demo page in real headless Firefox ESR against the real server (mesh engine), beside the
Chromium tests of test_web_page.py: the page loads and plays its WebRTC video, and the sliders
steer the face. Firefox is Debian's firefox-esr driven over Marionette (avatar_testkit.firefox;
the profile's prefs make loopback ICE work, see ../shared/notes/webrtc.md).

One browser for the module; each test loads the page afresh (a new session). As in the Chromium
tests, nothing times a rate: frames are counted and state is waited on.
"""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio

from avatar_testkit.browsers import FIREFOX
from avatar_testkit.wait import wait_until
from streamer.sessions import registry_of
from page_probes import (CHANGE_WITHIN_FRAMES, JS_ARM, JS_FRAME_PNG, JS_PLAYBACK, JS_REGION_DIFF,
                         JS_VIDEO_FPS, JS_WAIT_CHANGE, JS_WAIT_STILL, lips_box, png_data_url_to_rgb)

pytest.importorskip("marionette_driver")

from avatar_testkit.firefox import Firefox, open_firefox  # noqa: E402

# Marked "browser": tests/conftest.py prints a loud banner at the end of a run that skipped them.
pytestmark = [pytest.mark.browser,
              pytest.mark.skipif(not FIREFOX.available(), reason=FIREFOX.skip_reason())]

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"


@pytest_asyncio.fixture(scope="module")
async def firefox() -> AsyncIterator[Firefox]:
    async with open_firefox() as ff:
        yield ff


async def run(ff: Firefox, probe: str, arg: object = None) -> object:
    """A page_probes arrow function, as page.evaluate(probe, arg) would run it."""
    return await ff.js(f"return ({probe})(arguments[0]);", arg)


@pytest_asyncio.fixture
async def page(firefox: Firefox, server) -> AsyncIterator[Firefox]:
    await firefox.navigate(server.base_url + "/")
    try:
        yield firefox
    finally:
        # Leave like a user (pagehide deletes the session), so that no orphaned session keeps
        # the module's server rendering for the next tests.
        await firefox.navigate("about:blank")


async def wait_video(ff: Firefox) -> None:
    await ff.wait_js("window.avatarDemo && avatarDemo.transport === 'webrtc' && avatarDemo.framesShown > 3")


async def frames_shown(ff: Firefox) -> int:
    return await ff.js("return avatarDemo.framesShown;")


async def session_state(server, session_id: str) -> dict:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.base_url}/sessions/{session_id}") as r:
            assert r.status == 200
            return await r.json()


async def test_firefox_page_loads_and_plays_webrtc(page: Firefox, server):
    ff = page
    await wait_video(ff)
    assert await ff.js("return document.querySelectorAll('.preset').length;") == 8  # 7 + reset
    await ff.wait_js("document.getElementById('conn').dataset.state === 'live'")
    assert "WebRTC" in await ff.js("return document.getElementById('transport').textContent;")
    # The video plays: its clock advances, new frames keep being presented, 512x512.
    before = await run(ff, JS_PLAYBACK)
    await ff.wait_js("avatarDemo.framesShown >= arguments[0] + 50", before["shown"], timeout=60)
    after = await run(ff, JS_PLAYBACK)
    assert after["time"] > before["time"] and not after["paused"], (before, after)
    assert (after["width"], after["height"]) == (512, 512) and after["readyState"] >= 2, after
    # ... and shows a picture, not a blank (a frame drawn through a canvas)
    frame = png_data_url_to_rgb(await run(ff, JS_FRAME_PNG))
    assert frame.shape == (512, 512, 3) and int(frame.max()) - int(frame.min()) > 100
    # the server has this page's session with one WebRTC viewer
    sid = await ff.js("return avatarDemo.sessionId;")
    assert (await session_state(server, sid))["viewers"] == 1
    rate = await run(ff, JS_VIDEO_FPS, 1000)
    print(f"Firefox: {rate:.1f} fps shown (a figure, not a check)")
    ARTIFACTS.mkdir(exist_ok=True)
    png = await ff.screenshot_png()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    (ARTIFACTS / "web-demo-firefox.png").write_bytes(png)


async def test_firefox_happy_slider_changes_the_mouth(page: Firefox, server):
    from marionette_driver.keys import Keys

    ff = page
    await wait_video(ff)
    # Idle motion off (a click, like a user), so that only the slider moves the face.
    label = await ff.call(ff.client.find_element, "css selector", "label[for=idle-toggle]")
    await ff.call(label.click)
    await ff.wait_js("!document.getElementById('idle-toggle').checked")
    frame = png_data_url_to_rgb(await run(ff, JS_FRAME_PNG))
    box = await asyncio.to_thread(lips_box, frame)
    assert await run(ff, JS_WAIT_STILL, [*box, 10, 1.0]), "the face never came to rest"
    await run(ff, JS_ARM, [*box, "emo-happy"])
    await run(ff, JS_WAIT_STILL, [*box, 5, 1.0])
    noise = await run(ff, JS_REGION_DIFF)
    # Keyboard, like a user without a mouse: End moves a range input to its maximum.
    slider = await ff.call(ff.client.find_element, "id", "emo-happy")
    await ff.call(slider.send_keys, Keys.END)
    assert await ff.js("return document.getElementById('emo-happy').value;") == "1"
    result = await run(ff, JS_WAIT_CHANGE, [max(4.0, 4 * noise), CHANGE_WITHIN_FRAMES])
    assert result["ms"] is not None, \
        f"mouth region never changed in {result['frames']} frames (diff {result['diff']:.2f}, noise {noise:.2f})"
    print(f"Firefox: the mouth changed {result['ms']:.0f} ms ({result['frames']} frames) after the input")
    await ff.wait_js("document.querySelector('.preset[data-emotion=happy]')"
                     ".getAttribute('aria-pressed') === 'true'")
    sid = await ff.js("return avatarDemo.sessionId;")
    state = await session_state(server, sid)
    assert state["target"]["emotions"]["happy"] == 1 and state["idle_motion"] is False, state


async def test_firefox_slider_drag_is_coalesced_and_the_newest_value_wins(page: Firefox, server):
    from marionette_driver.keys import Keys

    ff = page
    await wait_video(ff)
    sid = await ff.js("return avatarDemo.sessionId;")
    session = registry_of(server.state).get(sid)
    seq0 = session.seq  # counts the control messages the server accepted
    slider = await ff.call(ff.client.find_element, "id", "emo-sad")
    await ff.js("""const s = document.getElementById('emo-sad'); window.__drag = [];
                   s.addEventListener('input', () => window.__drag.push(performance.now()));""")
    # 60 key presses in one go: a fast drag.
    await ff.call(slider.send_keys, Keys.ARROW_RIGHT * 60)
    assert await ff.js("return document.getElementById('emo-sad').value;") == "0.6"

    async def newest_value_arrived() -> dict | None:
        st = await session_state(server, sid)
        return st if st["target"]["emotions"]["sad"] == pytest.approx(0.6) else None

    await wait_until(newest_value_arrived, interval=0.1)
    controls = session.seq - seq0
    inputs = await ff.js("return window.__drag;")
    span_s = (inputs[-1] - inputs[0]) / 1000
    # Coalesced: at most ~30 control messages a second of dragging (the page's 34 ms interval),
    # yet the last value always goes out. An upper bound that load cannot break: a slower
    # machine stretches the drag's span and sends fewer.
    assert len(inputs) == 60
    assert 1 <= controls <= span_s * 30 + 2, (controls, span_s)
    await ff.wait_js("avatarDemo.framesShown >= arguments[0] + 10", await frames_shown(ff))  # streaming on

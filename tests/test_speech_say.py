"""POST /sessions/{id}/say: typed text spoken by espeak-ng on the server (the demo page's robot
voice). The real server and a real WebSocket client; espeak-ng is the Debian package that
.ci/run installs, and "not installed" is a real PATH without it."""
from __future__ import annotations

import shutil

import aiohttp
import pytest

from avatar_testkit.pyclient import SessionClient
from streamer.sessions.say_route import MAX_RUNNING, TTS_SLOTS

OPTIONS = {"idle_motion": "false", "size": "256", "fps": "25"}

needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")


async def _health(http: aiohttp.ClientSession, base: str) -> dict:
    async with http.get(base + "/health") as r:
        assert r.status == 200
        return await r.json()


@needs_espeak
async def test_say_speaks_text_and_refuses_bad_text(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        assert (await _health(http, server.base_url))["speech"] == {"tts": True}
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **OPTIONS)
        await c.connect()
        url = f"{server.base_url}/sessions/{c.session_id}/say"
        # A text that starts like an option is still just text (it follows "--").
        async with http.post(url, data={"text": "--version hello, how are you today?",
                                        "id": "greet"}) as r:
            body = await r.json()
            assert r.status == 202, body
        assert body["id"] == "greet" and body["duration_ms"] > 1000
        await c.wait_for("speech_started", id="greet", timeout=30)
        ended = await c.wait_for("speech_ended", id="greet", timeout=60)
        assert not ended["interrupted"] and abs(ended["duration_ms"] - body["duration_ms"]) <= 20

        for data, code in (({"text": "   "}, "missing_field"), ({}, "missing_field"),
                           ({"text": "a" * 501}, "invalid_field"),
                           ({"text": "bell\x07"}, "invalid_field"),
                           ({"text": "hi", "id": "x" * 201}, "invalid_field")):
            async with http.post(url, data=data) as r:
                body = await r.json()
                assert (r.status, body["error"]["code"]) == (400, code), (data, body)
        async with http.post(f"{server.base_url}/sessions/nope/say", data={"text": "hi"}) as r:
            assert r.status == 404
        # multipart works too (the page sends FormData)
        form = aiohttp.FormData()
        form.add_field("text", "Bye.")
        form.add_field("id", "bye")
        async with http.post(url, data=form) as r:
            assert r.status == 202, await r.text()
        await c.wait_for("speech_ended", id="bye", timeout=60)
        # Every espeak-ng slot taken (here: none left): 429 with Retry-After, nothing runs.
        slots = server.app[TTS_SLOTS]
        slots.limit = 0
        try:
            async with http.post(url, data={"text": "hi"}) as r:
                body = await r.json()
                assert (r.status, body["error"]["code"]) == (429, "tts_busy")
                assert r.headers["Retry-After"] == "1"
        finally:
            slots.limit = MAX_RUNNING
        assert c.close_code is None
        await c.close()
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200


async def test_without_espeak_the_server_says_so(server, astronaut_jpeg, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # a PATH where no espeak-ng lives
    async with aiohttp.ClientSession() as http:
        assert (await _health(http, server.base_url))["speech"] == {"tts": False}
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **OPTIONS)
        async with http.post(f"{server.base_url}/sessions/{c.session_id}/say",
                             data={"text": "hello"}) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"]) == (501, "tts_unavailable")
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200

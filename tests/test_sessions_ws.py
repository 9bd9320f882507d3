"""Sessions over the WebSocket only (no WebRTC): lifecycle, limits, validation, frame subscriptions.

Real server (conftest start_server / server, MeshEngine), real aiohttp WebSocket clients.
"""
from __future__ import annotations

import asyncio
import io
import json

import aiohttp
import numpy as np
import pytest
from PIL import Image

from avatar_testkit.pyclient import SessionClient
from avatar_testkit.wait import wait_until
from streamer.config import SessionLimits
from streamer.sessions import registry_of

SMALL = {"size": "256", "idle_motion": "false"}  # small frames keep the CPU share low


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"), dtype=np.int16)


async def _post(http: aiohttp.ClientSession, url: str, image: bytes | None, **fields: str):
    form = aiohttp.FormData()
    if image is not None:
        form.add_field("source_image", image, filename="p.jpg", content_type="image/jpeg")
    for k, v in fields.items():
        form.add_field(k, v)
    async with http.post(url + "/sessions", data=form) as r:
        return r.status, dict(r.headers), await r.json()


async def test_create_get_list_delete(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        status, _, body = await _post(http, server.base_url, astronaut_jpeg, fps="20", size="256",
                                      codec="h264", idle_motion="off")
        assert status == 201, body
        assert set(body) == {"session_id", "ws_url", "ice_servers", "expires_in", "fps", "size", "codec",
                             "baseline"}
        assert body["baseline"] == "neutral"
        assert (body["fps"], body["size"], body["codec"]) == (20, 256, "h264")
        assert body["ws_url"] == f"{server.ws_base}/sessions/{body['session_id']}/ws"
        assert body["ice_servers"] == [] and body["expires_in"] > 0
        sid = body["session_id"]
        async with http.get(f"{server.base_url}/sessions/{sid}") as r:
            st = await r.json()
        assert st["session_id"] == sid and st["idle_motion"] is False
        assert st["viewers"] == 0 and st["ws_clients"] == 0 and st["age_s"] >= 0
        assert len(st["motion"]["emotions"]) == 7 and len(st["motion"]["controls"]) == 11
        assert st["target"]["controls"]["yaw"] == 0
        async with http.get(f"{server.base_url}/sessions") as r:
            assert sid in [s["session_id"] for s in (await r.json())["sessions"]]
        async with http.delete(f"{server.base_url}/sessions/{sid}") as r:
            assert r.status == 200 and await r.json() == {"deleted": True, "session_id": sid}
        for method in ("GET", "DELETE"):
            async with http.request(method, f"{server.base_url}/sessions/{sid}") as r:
                assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"
        async with http.get(f"{server.base_url}/sessions/{sid}/ws",
                            headers={"Upgrade": "websocket", "Connection": "Upgrade",
                                     "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
                                     "Sec-WebSocket-Version": "13"}) as r:
            assert r.status == 404 and (await r.json())["error"]["code"] == "not_found"


@pytest.mark.parametrize("fields,status,code", [
    ({}, 400, "missing_field"),
    ({"fps": "0"}, 400, "bad_request"),
    ({"fps": "61"}, 400, "bad_request"),
    ({"fps": "ten"}, 400, "bad_request"),
    ({"size": "100"}, 400, "bad_request"),
    ({"size": "500"}, 400, "bad_request"),  # not a multiple of 16
    ({"codec": "av1"}, 400, "bad_request"),
    ({"idle_motion": "maybe"}, 400, "bad_request"),
])
async def test_create_rejects_bad_fields(server, astronaut_jpeg, fields, status, code):
    async with aiohttp.ClientSession() as http:
        image = None if not fields else astronaut_jpeg
        got, _, body = await _post(http, server.base_url, image, **fields)
    assert (got, body["error"]["code"]) == (status, code), body


async def test_create_rejects_bad_portraits(server, cat_jpeg):
    async with aiohttp.ClientSession() as http:
        assert (await _post(http, server.base_url, cat_jpeg))[2]["error"]["code"] == "no_face"
        got, _, body = await _post(http, server.base_url, b"not an image at all")
        assert (got, body["error"]["code"]) == (422, "invalid_image")
        got, _, body = await _post(http, server.base_url, b"")
        assert (got, body["error"]["code"]) == (400, "empty_file")
        async with http.get(server.base_url + "/sessions") as r:
            assert (await r.json())["sessions"] == []  # no slot leaked by the failures


async def test_session_limit_429(start_server, astronaut_jpeg):
    srv = await start_server(sessions=SessionLimits(max_sessions=2))
    async with aiohttp.ClientSession() as http:
        ids = [(await _post(http, srv.base_url, astronaut_jpeg, **SMALL))[2]["session_id"]
               for _ in range(2)]
        status, headers, body = await _post(http, srv.base_url, astronaut_jpeg, **SMALL)
        assert status == 429 and body["error"]["code"] == "too_many_sessions"
        assert int(headers["Retry-After"]) >= 1
        async with http.delete(f"{srv.base_url}/sessions/{ids[0]}") as r:
            assert r.status == 200
        assert (await _post(http, srv.base_url, astronaut_jpeg, **SMALL))[0] == 201


async def test_idle_timeout_and_max_age(start_server, astronaut_jpeg):
    # The max age is far above the idle timeout, so that a slow machine still sees the idle
    # session go while the held one lives.
    srv = await start_server(sessions=SessionLimits(idle_timeout_s=0.6, max_age_s=8.0))
    reg = registry_of(srv.state)
    async with aiohttp.ClientSession() as http:
        idle = await SessionClient.create(http, srv.base_url, astronaut_jpeg, **SMALL)
        held = await SessionClient.create(http, srv.base_url, astronaut_jpeg, **SMALL)
        await held.connect()  # a connected socket keeps a session alive past the idle timeout
        await wait_until(lambda: reg.get(idle.session_id) is None)
        assert reg.get(held.session_id) is not None
        # ... until its maximum age: the socket gets a final "closed" event and code 4000.
        closed = await held.wait_for("closed", timeout=30.0)
        assert closed["reason"] == "expired"
        assert await held.wait_closed(timeout=30.0) == 4000
        # the server unpins right after the sockets have closed
        await wait_until(lambda: not reg.active() and not srv.state.cache.pinned_keys())
        assert reg.active() == [] and srv.state.cache.pinned_keys() == []
        await held.close()


async def test_controls_state_ping_and_frames(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        hello = await c.connect()
        assert hello == {"type": "hello", "session_id": c.session_id, "fps": 25, "size": 256,
                         "codec": "vp8", "idle_motion": False, "baseline": "neutral"}
        await c.wait_for("ready")
        await c.send({"type": "ping", "t": 12.5, "id": "p1"})
        pong = await c.wait_for("pong", id="p1")
        assert pong["t"] == 12.5 and pong["server_time"] > 1e9

        await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 70})
        _, first = await asyncio.wait_for(c.binary.get(), 5)
        neutral = _decode(first)
        assert neutral.shape == (256, 256, 3)

        await c.send({"type": "set_controls", "yaw": 10, "smile": 0.5, "transition_ms": 0, "id": 7})
        st = await c.wait_for("state", id=7)
        assert st["target"]["controls"]["yaw"] == 10 and st["target"]["controls"]["smile"] == 0.5
        assert st["seq"] == 1 and st["transition_ms"] == 0 and st["idle_motion"] is False
        await c.send({"type": "set_emotion", "emotion": "surprised", "transition_ms": 0})
        st = await c.wait_for("state", seq=2)
        assert st["target"]["emotions"]["surprised"] == 1.0
        assert st["target"]["controls"]["yaw"] == 10  # unnamed controls keep their target
        while not c.binary.empty():
            c.binary.get_nowait()
        changed = False
        for _ in range(10):
            _, data = await asyncio.wait_for(c.binary.get(), 5)
            if (np.abs(_decode(data) - neutral).max(axis=2) > 40).mean() > 0.01:  # >1% of pixels
                changed = True
                break
        assert changed, "frames over the WebSocket did not change after a control"

        await c.send({"type": "set_emotions", "weights": {"happy": 0.5, "sad": 0.25}})
        st = await c.wait_for("state", seq=3)
        assert st["target"]["emotions"]["happy"] == 0.5 and st["target"]["emotions"]["surprised"] == 0
        await c.send({"type": "subscribe_frames", "format": "webp", "quality": 50, "fps": 5})
        await _synced(c)  # the server has taken the subscription: frames after the pong are WebP
        while not c.binary.empty():
            c.binary.get_nowait()
        _, data = await asyncio.wait_for(c.binary.get(), 30)
        assert data[:4] == b"RIFF" and data[8:12] == b"WEBP"
        assert _decode(data).shape == (256, 256, 3)

        await c.send({"type": "reset", "transition_ms": 0})
        st = await c.wait_for("state", seq=4)
        assert not any(st["target"]["emotions"].values()) and not any(st["target"]["controls"].values())
        await c.send({"type": "set_idle", "enabled": True})
        assert (await c.wait_for("state", seq=5))["idle_motion"] is True
        stats = await c.wait_for("stats", timeout=3)
        assert set(stats) == {"type", "fps", "render_ms", "dropped", "viewers", "frames",
                              "control_latency_ms"}
        assert stats["frames"] > 0 and stats["viewers"] == 0
        await c.send({"type": "unsubscribe_frames"})
        await _synced(c)  # every frame sent before the unsubscribe came before the pong
        while not c.binary.empty():
            c.binary.get_nowait()
        s = registry_of(server.state).get(c.session_id)
        assert not s.wants_frames()  # no subscriber, no viewer: nothing to render or send
        # Absence needs a window; a slow machine can only make it easier to pass, not fail.
        await asyncio.sleep(0.4)
        assert c.binary.empty()
        async with http.get(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert (await r.json())["ws_clients"] == 1
        await c.close()
        async with http.delete(f"{server.base_url}/sessions/{c.session_id}") as r:
            assert r.status == 200


async def _synced(c: SessionClient) -> None:
    """A ping round trip: the server has handled every message sent before it, and sent
    (in order, on the same socket) everything that came before its pong."""
    ping_id = f"sync-{len(c.events)}"
    await c.send({"type": "ping", "t": 0, "id": ping_id})
    await c.wait_for("pong", id=ping_id, timeout=30)


BAD_MESSAGES = [
    ("not json {", "invalid_json", None),
    ("[1, 2]", "invalid_message", None),
    ('{"no_type": 1}', "invalid_message", None),
    ('{"type": "dance"}', "unknown_type", "dance"),
    ('{"type": "set_emotion", "emotion": "bored"}', "invalid_value", "set_emotion"),
    ('{"type": "set_emotion", "emotion": "happy", "intensity": 2}', "invalid_value", "set_emotion"),
    ('{"type": "set_emotion", "emotion": "happy", "transition_ms": -5}', "invalid_value", "set_emotion"),
    ('{"type": "set_emotion", "emotion": "happy", "intensity": "1"}', "invalid_value", "set_emotion"),
    ('{"type": "set_emotions", "weights": {"happy": 1.5}}', "invalid_value", "set_emotions"),
    ('{"type": "set_emotions", "weights": [1]}', "invalid_message", "set_emotions"),
    ('{"type": "set_controls", "yaw": 45}', "invalid_value", "set_controls"),
    ('{"type": "set_controls", "wiggle": 1}', "invalid_value", "set_controls"),
    ('{"type": "set_controls", "smile": NaN}', "invalid_value", "set_controls"),
    ('{"type": "set_idle", "enabled": "yes"}', "invalid_value", "set_idle"),
    ('{"type": "subscribe_frames", "format": "gif"}', "invalid_value", "subscribe_frames"),
    ('{"type": "subscribe_frames", "fps": 99}', "invalid_value", "subscribe_frames"),
    ('{"type": "subscribe_frames", "quality": 0}', "invalid_value", "subscribe_frames"),
    ('{"type": "offer"}', "invalid_message", "offer"),
    ('{"type": "offer", "sdp": "v=0 nonsense"}', "sdp_error", "offer"),
    ('{"type": "candidate", "candidate": {"candidate": "candidate:x"}}', "invalid_message", "candidate"),
]


async def test_bad_messages_get_errors_while_streaming(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await c.connect()
        await c.send({"type": "subscribe_frames", "format": "jpeg", "fps": 10})
        await asyncio.wait_for(c.binary.get(), 5)
        for i, (text, code, request_type) in enumerate(BAD_MESSAGES[:10]):
            n = len(c.events)
            await c.send(text)
            err = await c.wait_for("error", after=n)
            assert (err["code"], err["request_type"]) == (code, request_type), (text, err)
            assert err["message"]
        # the id is echoed on errors too
        n = len(c.events)
        await c.send({"type": "set_emotion", "emotion": "bored", "id": "x1"})
        assert (await c.wait_for("error", after=n))["id"] == "x1"
        n = len(c.events)
        await c.send("x" * (300 * 1024))  # over 256 KiB
        assert (await c.wait_for("error", after=n))["code"] == "message_too_large"
        n = len(c.events)
        await c.send(b"\x00\xffgarbage")
        assert (await c.wait_for("error", after=n))["code"] == "binary_not_supported"
        # 13 errors so far in this window: the socket is still open and frames still flow
        while not c.binary.empty():
            c.binary.get_nowait()
        await asyncio.wait_for(c.binary.get(), 5)
        await c.send({"type": "ping", "t": 1})
        await c.wait_for("pong", after=n)
        await c.close()


async def test_remaining_bad_messages(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await c.connect()
        for text, code, request_type in BAD_MESSAGES[10:]:
            n = len(c.events)
            await c.send(text)
            err = await c.wait_for("error", after=n)
            assert (err["code"], err["request_type"]) == (code, request_type), (text, err)
        await c.send({"type": "ping", "t": 2, "id": 3})
        await c.wait_for("pong", id=3)
        await c.close()


async def test_garbage_flood_closes_1008(server, astronaut_jpeg):
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await c.connect()
        for _ in range(25):
            if c.close_code is not None:
                break
            try:
                await c.send("garbage")
            except ConnectionError:
                break
        assert await c.wait_closed() == 1008
        assert sum(e["type"] == "error" for e in c.events) == 21
        # the session itself survives: a new socket works
        c2 = SessionClient(http, c.info)
        await c2.connect()
        await c2.send(json.dumps({"type": "ping", "t": 0}))
        await c2.wait_for("pong")
        await c2.close()
        await c.close()

"""Issue 15, WebSocket half: hostile numbers in every numeric field, caps on sockets and frame
subscriptions, one encode per stream shared by its sockets, fairness across sessions, and
heartbeats that free the session of a client that vanished.

Real server on loopback (conftest), real aiohttp WebSocket clients, and a raw TCP client that
does the WebSocket handshake by hand and then goes silent.
"""
from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import threading

import aiohttp
import numpy as np
import pytest

from avatar_testkit.pyclient import SessionClient
from avatar_testkit.wait import wait_until
from engine.motion import CONTROL_RANGES, EMOTIONS
from streamer import strict_json
from streamer.config import AccessConfig, SessionLimits
from streamer.sessions import messages, ws as ws_module
from streamer.sessions.frames import EncodeJob, EncodeStream, FairEncoder, StreamKey
from streamer.sessions.ws import CLOSE_TOO_MANY

SMALL = {"size": "256", "idle_motion": "false"}

# ---------------------------------------------------------------- strict JSON (unit level)

HOSTILE = {
    "huge int": "1" + "0" * 400,
    "huge negative int": "-" + "9" * 400,
    "int just past the parse limit": "9" * (strict_json.MAX_INT_DIGITS + 1),
    "float overflow": "1e400",
    "NaN": "NaN",
    "Infinity": "Infinity",
    "-Infinity": "-Infinity",
}


@pytest.mark.parametrize("literal", list(HOSTILE.values()), ids=list(HOSTILE))
def test_strict_loads_refuses_every_unusable_number(literal):
    for text in (f"{literal}", f"[{literal}]", f'{{"a": {{"b": [1, {literal}]}}}}'):
        with pytest.raises(strict_json.NumberError):
            strict_json.loads(text)
    assert isinstance(strict_json.NumberError("x"), ValueError)  # callers catching ValueError


def test_strict_loads_normalises_negative_zero_and_keeps_sane_numbers():
    out = strict_json.loads('{"a": -0, "b": -0.0, "c": -0e5, "d": 12345678901234567890, "e": 1.5e300}')
    assert out["a"] == 0 and math.copysign(1, out["b"]) == 1 and math.copysign(1, out["c"]) == 1
    assert out["d"] == 12345678901234567890 and out["e"] == 1.5e300
    assert "-0" not in strict_json.dumps(out)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_strict_dumps_and_json_response_never_write_nan(bad):
    with pytest.raises(ValueError):
        strict_json.dumps({"x": [bad]})
    with pytest.raises(ValueError):
        strict_json.json_response({"x": bad})


def test_finite_number_never_raises():
    for v in (10 ** 400, -(10 ** 400), float("nan"), float("inf"), True, "1", None, [1]):
        assert strict_json.finite_number(v) is None
    assert strict_json.finite_number(-0.0) == 0 and math.copysign(1, strict_json.finite_number(-0.0)) == 1
    assert strict_json.finite_number(3) == 3.0


# ------------------------------------------------- every numeric field of every message type

def _numeric_fields() -> list[tuple[str, str]]:
    """(message type, a JSON template with {v} where the number goes) for every numeric field
    of the protocol (docs/protocol.md, streamer/sessions/messages.py)."""
    out = [("set_emotion", '{"type": "set_emotion", "emotion": "happy", "intensity": {v}}'),
           ("set_emotion", '{"type": "set_emotion", "emotion": "happy", "transition_ms": {v}}'),
           ("set_emotions", '{"type": "set_emotions", "weights": {"happy": 0.5}, "transition_ms": {v}}'),
           ("set_controls", '{"type": "set_controls", "transition_ms": {v}}'),
           ("reset", '{"type": "reset", "transition_ms": {v}}'),
           ("subscribe_frames", '{"type": "subscribe_frames", "quality": {v}}'),
           ("subscribe_frames", '{"type": "subscribe_frames", "fps": {v}}'),
           ("ping", '{"type": "ping", "t": {v}}'),
           ("candidate", '{"type": "candidate", "candidate": {"candidate": "candidate:1 1 udp 1 '
                         '127.0.0.1 5000 typ host", "sdpMLineIndex": {v}}}')]
    # Speech (the speak header's numbers and its client timings; speak_end and interrupt
    # carry only the id, covered below).
    timing = '{"start_ms": %s, "end_ms": %s, "viseme": "open", "weight": %s}'
    out += [("speak", '{"type": "speak", "format": "pcm_s16le", "sample_rate": {v}, "channels": 1}'),
            ("speak", '{"type": "speak", "format": "pcm_s16le", "sample_rate": 16000, "channels": {v}}')]
    out += [("speak", '{"type": "speak", "format": "pcm_s16le", "sample_rate": 16000, "channels": 1, '
             '"timings": [%s]}' % (timing % args))
            for args in (("{v}", "100", "1"), ("0", "{v}", "1"), ("0", "100", "{v}"))]
    out += [("set_emotions", '{"type": "set_emotions", "weights": {"%s": {v}}}' % e) for e in EMOTIONS]
    out += [("set_controls", '{"type": "set_controls", "%s": {v}}' % c) for c in CONTROL_RANGES]
    # The request id rides on every message type: hostile ids are refused too.
    out += [(t, '{"type": "%s", "id": {v}}' % t) for t in ("ping", "reset", "unsubscribe_frames",
                                                            "speak_end", "interrupt")]
    # A bad number in a field the message does not even use is refused as well.
    out += [("set_idle", '{"type": "set_idle", "enabled": true, "extra": [{v}]}')]
    return out


# Message types with no numeric field of their own (their id is covered above).
NO_NUMERIC_FIELD = {"offer", "set_idle", "unsubscribe_frames"}


def test_numeric_field_list_covers_every_message_type():
    covered = {t for t, _ in _numeric_fields()} | NO_NUMERIC_FIELD
    missing = set(messages._PARSERS) - covered
    assert not missing, f"add the numeric fields of {missing} to _numeric_fields()"


async def _raw_socket(http: aiohttp.ClientSession, url: str) -> tuple[aiohttp.ClientWebSocketResponse, list]:
    """A socket whose every text frame is parsed with the strict parser (a NaN would fail)."""
    ws = await http.ws_connect(url, max_msg_size=0)
    texts: list[dict] = []

    async def read() -> None:
        async for msg in ws:
            if msg.type == aiohttp.WSMsgType.TEXT:
                texts.append(strict_json.loads(msg.data))

    asyncio.get_running_loop().create_task(read())
    await wait_until(lambda: any(e["type"] == "hello" for e in texts), timeout=30)
    return ws, texts


async def test_hostile_numbers_in_every_field_get_invalid_value_and_the_socket_lives(
        start_server, astronaut_jpeg, monkeypatch, caplog):
    # Hundreds of bad messages on purpose: the flood limit is not what this test is about.
    monkeypatch.setattr(ws_module, "FLOOD_ERRORS", 10_000)
    server = await start_server()
    caplog.set_level(logging.INFO)
    values = list(HOSTILE.values()) + ["1e300", "-1e300", "1" + "0" * 19]  # parse fine, out of range
    async with aiohttp.ClientSession() as http:
        client = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        ws, texts = await _raw_socket(http, client.info["ws_url"])
        sent = 0
        for mtype, template in _numeric_fields():
            # ping's t and the id take any finite number: only the unusable ones are refused.
            unbounded = any(f'"{k}": ' in template for k in ("t", "id", "extra"))
            for v in (HOSTILE.values() if unbounded else values):
                n = len(texts)
                text = template.replace("{v}", v)
                if '"id"' not in template:
                    text = '{"id": 5, ' + text[1:]  # the error still names the request
                await ws.send_str(text)
                sent += 1
                err = await wait_until(lambda: next((e for e in texts[n:] if e["type"] == "error"), None),
                                       timeout=30, message=f"{mtype} {template} {v[:20]}")
                assert err["code"] == "invalid_value", (template, v[:20], err)
                assert err["request_type"] == mtype, err
                assert err.get("id") == (None if '"id"' in template else 5), err
        assert not ws.closed
        # ... and it still works: a pong, and a state with -0 normalised.
        await ws.send_str('{"type": "ping", "t": -0.0, "id": -0.0}')
        pong = await wait_until(lambda: next((e for e in texts if e["type"] == "pong"), None), timeout=30)
        assert math.copysign(1, pong["t"]) == 1 and math.copysign(1, pong["id"]) == 1
        await ws.send_str('{"type": "set_controls", "yaw": -0.0, "smile": -0, "transition_ms": -0}')
        state = await wait_until(lambda: next((e for e in texts if e["type"] == "state"), None), timeout=30)
        assert all(math.copysign(1, v) == 1 for v in state["target"]["controls"].values())
        assert state["transition_ms"] == 0
        await ws.close()
        await client.close()
    assert sent >= 7 * (len(EMOTIONS) + len(CONTROL_RANGES))
    tracebacks = [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]
    assert not tracebacks, [r.getMessage() for r in tracebacks[:3]]


# ------------------------------------------------------------------ fair, shared encoding

def test_fair_encoder_serves_sessions_in_turn():
    """A session with many queued streams cannot make another wait behind all of them."""
    gate = threading.Event()
    order: list[int] = []

    def encode(frame: np.ndarray, fmt: str, quality: int) -> bytes:
        gate.wait(10)
        order.append(quality)
        return b"x"

    async def run() -> None:
        enc = FairEncoder(workers=1, encode=encode)
        frame = np.zeros((2, 2, 3), np.uint8)
        hog = [EncodeStream(StreamKey("jpeg", q, 25.0)) for q in range(1, 9)]
        other = EncodeStream(StreamKey("jpeg", 99, 25.0))
        for s in hog:
            s.job = EncodeJob("hog", s, frame)
            enc.submit(s.job)
        other.job = EncodeJob("other", other, frame)
        enc.submit(other.job)
        gate.set()
        await wait_until(lambda: enc.encodes == 9, timeout=10)
        enc.close()

    asyncio.run(run())
    # The first hog job was already running; the other session's job is served next.
    assert order.index(99) <= 1, order


def test_fair_encoder_keeps_a_worker_open_for_other_sessions():
    """While a hog's slow encodes run, another session's frame starts at once."""
    hog_gate = threading.Event()
    done: list[int] = []

    def encode(frame: np.ndarray, fmt: str, quality: int) -> bytes:
        if quality != 99:
            hog_gate.wait(10)
        done.append(quality)
        return b"x"

    async def run() -> None:
        enc = FairEncoder(workers=2, encode=encode)
        frame = np.zeros((2, 2, 3), np.uint8)
        for q in range(1, 9):
            s = EncodeStream(StreamKey("jpeg", q, 25.0))
            s.job = EncodeJob("hog", s, frame)
            enc.submit(s.job)
        other = EncodeStream(StreamKey("jpeg", 99, 25.0))
        other.job = EncodeJob("other", other, frame)
        enc.submit(other.job)
        try:
            await wait_until(lambda: 99 in done, timeout=10)
            assert done == [99]  # every hog encode is still blocked
        finally:
            hog_gate.set()
        await wait_until(lambda: enc.encodes == 9, timeout=10)
        enc.close()

    asyncio.run(run())


async def _subscribers(http, url, n, **sub) -> list[SessionClient]:
    out = []
    for _ in range(n):
        c = SessionClient(http, {"ws_url": url})
        await c.connect()
        await c.send({"type": "subscribe_frames", **sub})
        out.append(c)
    return out


async def test_one_encode_per_frame_however_many_sockets_share_a_stream(start_server, astronaut_jpeg):
    server = await start_server()
    async with aiohttp.ClientSession() as http:
        owner = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        session = server.state.sessions.get(owner.session_id)
        subs = await _subscribers(http, owner.info["ws_url"], 6, format="webp", quality=90)
        await wait_until(lambda: all(c.binary.qsize() >= 10 for c in subs), timeout=60,
                         message=lambda: str([c.binary.qsize() for c in subs]))
        encodes = session.frames.encodes_submitted
        most = max(c.binary.qsize() for c in subs)
        assert len(session.frames.streams) == 1
        # Separate encodes would be about 6 x `most`; shared, at most one per delivered frame
        # (plus the one or two in flight).
        assert encodes <= most + 3, (encodes, most)
        async with http.get(server.base_url + "/metrics") as r:
            text = await r.text()
        line = next(ln for ln in text.splitlines()
                    if ln.startswith("liveportrait_session_frame_encodes_total "))
        assert float(line.split()[1]) <= encodes
        # A second, different stream is one more encode per frame, not one per socket.
        other = await _subscribers(http, owner.info["ws_url"], 3, format="jpeg", quality=50)
        await wait_until(lambda: all(c.binary.qsize() >= 3 for c in other), timeout=60)
        assert len(session.frames.streams) == 2
        # Unsubscribing the last socket of a stream removes the stream.
        for c in other:
            await c.send({"type": "unsubscribe_frames"})
        await wait_until(lambda: len(session.frames.streams) == 1, timeout=30)
        for c in subs + other + [owner]:
            await c.close()


async def _received_ratio(b: SessionClient, session, frames: int) -> float:
    """Of the next `frames` frames session B renders, the share its subscriber receives."""
    while not b.binary.empty():
        b.binary.get_nowait()
    start = session.frames_rendered
    got = 0
    while session.frames_rendered - start < frames:
        try:
            await asyncio.wait_for(b.binary.get(), timeout=30)
            got += 1
        except asyncio.TimeoutError:
            break
    return got / max(1, session.frames_rendered - start)


async def test_a_flood_of_subscribers_on_one_session_does_not_starve_another(start_server, astronaut_jpeg,
                                                                           grace_hopper_jpeg):
    server = await start_server()
    async with aiohttp.ClientSession() as http:
        b = await SessionClient.create(http, server.base_url, grace_hopper_jpeg, **SMALL)
        await b.connect()
        sb = server.state.sessions.get(b.session_id)
        await b.send({"type": "subscribe_frames", "format": "jpeg", "quality": 70})
        await wait_until(lambda: b.binary.qsize() >= 3, timeout=60)
        baseline = await _received_ratio(b, sb, 40)
        # The hog: every subscriber a distinct WebP quality-100 stream (no sharing possible).
        hog = await SessionClient.create(http, server.base_url, astronaut_jpeg, idle_motion="false")
        n = server.state.config.sessions.max_subscriptions_per_session
        hogs = []
        for i in range(n):
            c = SessionClient(http, {"ws_url": hog.info["ws_url"]})
            await c.connect()
            await c.send({"type": "subscribe_frames", "format": "webp", "quality": 100 - i})
            hogs.append(c)
        sa = server.state.sessions.get(hog.session_id)
        await wait_until(lambda: len(sa.frames.streams) == n and sa.frames.encodes_submitted > 3 * n,
                         timeout=60)
        loaded = await _received_ratio(b, sb, 40)
        # Round-robin: B's one stream waits behind at most one of A's jobs per frame.
        assert loaded >= 0.5 * baseline, (loaded, baseline)
        for c in hogs + [b]:
            await c.close()


# ---------------------------------------------------------------------------------- caps

async def test_socket_and_subscription_caps_per_session(start_server, astronaut_jpeg):
    limits = SessionLimits(max_sockets_per_session=3, max_subscriptions_per_session=2)
    server = await start_server(sessions=limits)
    async with aiohttp.ClientSession() as http:
        first = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        url = first.info["ws_url"]
        socks = [SessionClient(http, {"ws_url": url}) for _ in range(3)]
        for c in socks:
            await c.connect()
        extra = SessionClient(http, {"ws_url": url})
        extra.ws = await http.ws_connect(url)
        extra._tasks.append(asyncio.get_running_loop().create_task(extra._read()))
        assert await extra.wait_closed(30) == CLOSE_TOO_MANY
        assert [e["type"] for e in extra.events] == ["error"]
        assert extra.events[0]["code"] == "too_many_sockets"
        # Subscriptions: two are fine, the third gets an error and its socket stays.
        for c in socks[:2]:
            await c.send({"type": "subscribe_frames"})
        await wait_until(lambda: all(c.binary.qsize() >= 1 for c in socks[:2]), timeout=60)
        await socks[0].send({"type": "subscribe_frames", "format": "webp"})  # changing: no cap
        await socks[2].send({"type": "subscribe_frames", "id": 7})
        err = await socks[2].wait_for("error", timeout=30)
        assert err["code"] == "too_many_subscriptions" and err["id"] == 7
        await socks[2].send({"type": "ping", "t": 1})
        await socks[2].wait_for("pong", timeout=30)
        # A closed socket frees its slots.
        await socks[1].close()
        await socks[2].send({"type": "subscribe_frames"})
        await wait_until(lambda: socks[2].binary.qsize() >= 1, timeout=60)
        again = SessionClient(http, {"ws_url": url})
        await again.connect()
        assert not any(e["type"] == "error" for e in socks[0].events)  # its change was no new one
        for c in socks + [again]:
            await c.close()


async def test_socket_and_subscription_caps_per_key_and_server(start_server, astronaut_jpeg):
    limits = SessionLimits(max_sockets_per_key=3, max_subscriptions_per_key=1, max_sockets=4)
    server = await start_server(sessions=limits, access=AccessConfig(api_keys=["key-one", "key-two"]))
    one = aiohttp.ClientSession(headers={"Authorization": "Bearer key-one"})
    two = aiohttp.ClientSession(headers={"Authorization": "Bearer key-two"})
    try:
        a = await SessionClient.create(one, server.base_url, astronaut_jpeg, **SMALL)
        b = await SessionClient.create(one, server.base_url, astronaut_jpeg, **SMALL)
        c = await SessionClient.create(two, server.base_url, astronaut_jpeg, **SMALL)
        opened = []
        for info, http in ((a.info, one), (a.info, one), (b.info, one)):
            s = SessionClient(http, info)
            await s.connect()
            opened.append(s)
        refused = SessionClient(one, b.info)
        refused.ws = await one.ws_connect(b.info["ws_url"])
        refused._tasks.append(asyncio.get_running_loop().create_task(refused._read()))
        assert await refused.wait_closed(30) == CLOSE_TOO_MANY
        assert "API key" in refused.events[0]["message"]
        # Another key's session is not affected by key-one's cap ...
        other = SessionClient(two, c.info)
        await other.connect()
        # ... but the server-wide cap (4 sockets) is now reached.
        last = SessionClient(two, c.info)
        last.ws = await two.ws_connect(c.info["ws_url"])
        last._tasks.append(asyncio.get_running_loop().create_task(last._read()))
        assert await last.wait_closed(30) == CLOSE_TOO_MANY
        assert "server" in last.events[0]["message"]
        # Per-key subscriptions: one for key-one across both its sessions.
        await opened[0].send({"type": "subscribe_frames"})
        await wait_until(lambda: opened[0].binary.qsize() >= 1, timeout=60)
        await opened[2].send({"type": "subscribe_frames"})
        err = await opened[2].wait_for("error", timeout=30)
        assert err["code"] == "too_many_subscriptions" and "API key" in err["message"]
        await other.send({"type": "subscribe_frames"})  # key-two has its own budget
        await wait_until(lambda: other.binary.qsize() >= 1, timeout=60)
        for s in opened + [other, refused, last]:
            await s.close()
    finally:
        await one.close()
        await two.close()


# ---------------------------------------------------------------------------- heartbeats

async def _silent_raw_socket(port: int, path: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """A WebSocket handshake by hand, then silence: no pong, no close, the TCP stays open."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    key = base64.b64encode(os.urandom(16)).decode()
    writer.write((f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
    assert head.startswith(b"HTTP/1.1 101"), head[:100]
    return reader, writer


async def test_a_client_that_goes_silent_loses_its_session_to_the_idle_timeout(start_server, astronaut_jpeg):
    # A pong may take up to 2 s (half the heartbeat): room for a busy machine's event loop.
    limits = SessionLimits(ws_heartbeat_s=4.0, idle_timeout_s=1.0)
    server = await start_server(sessions=limits)
    async with aiohttp.ClientSession() as http:
        live = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        await live.connect()  # aiohttp's client answers pings: it must keep its session
        gone = await SessionClient.create(http, server.base_url, astronaut_jpeg, **SMALL)
        reg = server.state.sessions
        silent = reg.get(gone.session_id)
        reader, writer = await _silent_raw_socket(server.port, f"/sessions/{gone.session_id}/ws")
        try:
            await wait_until(lambda: len(silent.sockets) == 1, timeout=30)
            # The heartbeat finds the silent socket, and then the idle timeout ends the session.
            await wait_until(lambda: not silent.sockets, timeout=60)
            await wait_until(lambda: reg.get(gone.session_id) is None, timeout=60)
        finally:
            writer.close()
        # Several heartbeats went by: the answering client and its session are still there.
        assert reg.get(live.session_id) is not None and live.close_code is None
        await live.send({"type": "ping", "t": 1})
        await live.wait_for("pong", timeout=30)
        await live.close()

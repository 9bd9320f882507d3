"""Hostile input against the real server: hypothesis-driven WebSocket messages and multipart
uploads, plus targeted SDP and ICE-candidate attacks. Each gets a clean error (a JSON error
over HTTP, an ``error`` event over the socket) and the server keeps serving: a valid request
succeeds afterwards and the session still streams.

Hypothesis drives a blocking test body in a worker thread; each example runs its coroutine on
the server's event loop (run_coroutine_threadsafe), so client and server share that loop as in
every other test. Run with -s to see the number of cases tried per target.
"""
from __future__ import annotations

import asyncio
import json
import re
from dataclasses import dataclass, field
from typing import Any, Awaitable, Callable

import aiohttp
import pytest
from aiortc import RTCPeerConnection
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from avatar_testkit.pyclient import SessionClient
from avatar_testkit.wait import wait_until
from engine.motion import CONTROL_RANGES, EMOTIONS
from streamer.config import SessionLimits
from streamer.sessions.messages import MAX_TEXT_BYTES
from streamer.sessions import registry_of

WS_ERROR_CODES = {"invalid_json", "invalid_message", "unknown_type", "invalid_value",
                  "message_too_large", "binary_not_supported", "sdp_error", "rate_limited"}
WS_EVENTS = {"error", "state", "pong", "answer", "ready", "stats", "hello"}
RENDER_STATUSES = {200, 400, 413, 415, 422, 503}
SESSION_STATUSES = {201, 400, 413, 415, 422, 429, 503}
REBIND_AFTER_ERRORS = 12  # the server closes a socket after 20 errors in 10 s (1008)
MESSAGE_TYPES = ("offer", "candidate", "set_emotion", "set_emotions", "set_controls", "reset",
                 "set_idle", "subscribe_frames", "unsubscribe_frames", "ping")
FIELDS = {
    "offer": ["sdp"], "candidate": ["candidate"], "set_emotion": ["emotion", "intensity"],
    "set_emotions": ["weights"], "set_controls": list(CONTROL_RANGES), "reset": [],
    "set_idle": ["enabled"], "subscribe_frames": ["format", "quality", "fps"],
    "unsubscribe_frames": [], "ping": ["t"],
}
EXAMPLES_WS = 150
EXAMPLES_FORM = 60
_SETTINGS = settings(deadline=None, database=None, derandomize=True, print_blob=True,
                     suppress_health_check=list(HealthCheck))


def run_hypothesis(loop: asyncio.AbstractEventLoop, strategy: st.SearchStrategy,
                   check: Callable[[Any], Awaitable[None]], max_examples: int) -> int:
    """Run ``check`` for each example on ``loop``; blocking, so call it via to_thread."""
    tried = [0]

    @settings(_SETTINGS, max_examples=max_examples)
    @given(strategy)
    def body(example: Any) -> None:
        tried[0] += 1
        asyncio.run_coroutine_threadsafe(check(example), loop).result(timeout=60)

    body()
    return tried[0]


# ---- strategies ----

_scalars = (st.none() | st.booleans() | st.integers(-2**70, 2**70)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=12), inner, max_size=4),
                           max_leaves=12)
# Values near the valid ones hit the range checks more often than pure noise does.
near_valid = st.one_of(st.sampled_from(list(EMOTIONS) + ["jpeg", "webp", "HAPPY", ""]),
                       st.floats(-25, 25), st.integers(-5, 200), st.booleans(), json_values)


@st.composite
def typed_messages(draw: st.DrawFn) -> dict:
    mtype = draw(st.sampled_from(MESSAGE_TYPES))
    msg: dict[str, Any] = {"type": mtype}
    for name in FIELDS[mtype]:
        if draw(st.booleans()):
            msg[name] = draw(near_valid)
    if mtype in ("set_emotion", "set_emotions", "set_controls", "reset") and draw(st.booleans()):
        msg["transition_ms"] = draw(near_valid)
    if mtype == "set_emotions" and draw(st.booleans()):
        msg["weights"] = draw(st.dictionaries(st.sampled_from(list(EMOTIONS) + ["x"]), near_valid,
                                              max_size=3))
    if mtype == "candidate" and draw(st.booleans()):
        msg["candidate"] = draw(st.fixed_dictionaries(
            {}, optional={"candidate": near_valid, "sdpMid": near_valid, "sdpMLineIndex": near_valid}))
    extra = draw(st.dictionaries(st.text(max_size=8), json_values, max_size=2))
    msg.update({k: v for k, v in extra.items() if k != "type"})
    if draw(st.booleans()):
        msg["id"] = draw(json_values)
    return msg


ws_payloads = st.one_of(
    typed_messages().map(lambda m: json.dumps(m)),  # json.dumps writes NaN/Infinity: accepted by the parser
    json_values.map(json.dumps),  # JSON that is not an object, or an object without a type
    st.dictionaries(st.text(max_size=8), json_values, max_size=3).map(
        lambda d: json.dumps({**d, "type": d.get("type", "nope")})),
    st.text(max_size=200),  # mostly not JSON at all
    st.binary(max_size=200),  # binary frames
)


# ---- WebSocket fuzzing ----

@dataclass
class _Socket:
    """One fuzzing socket; rebinds before the flood limit would close it."""
    http: aiohttp.ClientSession
    info: dict
    client: SessionClient | None = None
    errors: int = 0
    pings: int = 0
    seen_codes: set[str] = field(default_factory=set)

    async def get(self) -> SessionClient:
        if self.client is None or self.errors >= REBIND_AFTER_ERRORS:
            if self.client is not None:
                await self.client.close()
            self.client = SessionClient(self.http, self.info)
            await self.client.connect()
            self.errors = 0
        return self.client

    async def send_and_sync(self, payload: str | bytes) -> list[dict]:
        """Send one payload, then a ping; returns the events that arrived before the pong."""
        c = await self.get()
        start = len(c.events)
        await c.send(payload)
        self.pings += 1
        marker = f"sync-{self.pings}"
        await c.send({"type": "ping", "id": marker})
        await c.wait_for("pong", timeout=10, after=start, id=marker)
        assert c.close_code is None, f"socket closed ({c.close_code}) by {payload!r:.200}"
        end = next(i for i in range(start, len(c.events)) if c.events[i].get("id") == marker)
        for ev in c.events[start:end]:
            assert ev.get("type") in WS_EVENTS, ev
        # Direct replies only: ready and stats events arrive on their own schedule.
        replies = [ev for ev in c.events[start:end] if ev["type"] in ("error", "state", "pong", "answer")]
        for ev in replies:
            if ev["type"] == "error":
                self.errors += 1
                assert ev["code"] in WS_ERROR_CODES, ev
                assert isinstance(ev["message"], str) and ev["message"], ev
                self.seen_codes.add(ev["code"])
        return replies

    async def close(self) -> None:
        if self.client is not None:
            await self.client.close()


async def _assert_streams(http: aiohttp.ClientSession, info: dict) -> None:
    """A fresh socket on the session still gets a pong and frames."""
    c = SessionClient(http, info)
    await c.connect()
    try:
        await c.send({"type": "subscribe_frames", "format": "jpeg", "quality": 50, "fps": 10})
        _, data = await asyncio.wait_for(c.binary.get(), 10)
        assert data[:2] == b"\xff\xd8"
        await c.send({"type": "set_emotion", "emotion": "happy", "intensity": 0.5, "id": "ok"})
        await c.wait_for("state", id="ok")
    finally:
        await c.close()


async def test_websocket_messages_fuzzed(server, grace_hopper_jpeg: bytes) -> None:
    async with aiohttp.ClientSession() as http:
        client = await SessionClient.create(http, server.base_url, grace_hopper_jpeg, fps=10, size=128)
        sock = _Socket(http, client.info)
        try:
            async def check(payload: str | bytes) -> None:
                replies = await sock.send_and_sync(payload)
                if isinstance(payload, bytes):
                    assert [e["code"] for e in replies if e["type"] == "error"] == \
                        ["binary_not_supported"]
                else:
                    # Every message gets at most one direct reply (an answer may come with it).
                    assert len([e for e in replies if e["type"] in ("error", "state", "pong")]) <= 1

            tried = await asyncio.to_thread(run_hypothesis, asyncio.get_running_loop(),
                                            ws_payloads, check, EXAMPLES_WS)
        finally:
            await sock.close()
        print(f"\nws fuzz: {tried} messages, error codes seen: {sorted(sock.seen_codes)}")
        assert tried >= EXAMPLES_WS // 2
        assert {"invalid_json", "invalid_message", "unknown_type", "invalid_value",
                "binary_not_supported"} <= sock.seen_codes
        await _assert_streams(http, client.info)


async def test_websocket_huge_messages(server, grace_hopper_jpeg: bytes) -> None:
    async with aiohttp.ClientSession() as http:
        client = await SessionClient.create(http, server.base_url, grace_hopper_jpeg, fps=10, size=128)
        sock = _Socket(http, client.info)

        def ping_of(total_bytes: int, pad_char: str = "x") -> str:
            head = '{"type": "ping", "t": 1, "pad": "'
            n = (total_bytes - len(head) - 2) // len(pad_char.encode())
            text = head + pad_char * n + '"}'
            assert abs(len(text.encode()) - total_bytes) < 3
            return text

        try:
            exact = ping_of(MAX_TEXT_BYTES)
            exact = exact[:-2] + "x" * (MAX_TEXT_BYTES - len(exact.encode())) + '"}'
            assert len(exact.encode()) == MAX_TEXT_BYTES
            assert [e["type"] for e in await sock.send_and_sync(exact)] == ["pong"]
            over = exact[:-2] + 'x"}'
            replies = await sock.send_and_sync(over)
            assert [e.get("code") for e in replies] == ["message_too_large"]
            # Under the limit in characters, over it in UTF-8 bytes.
            wide = ping_of(MAX_TEXT_BYTES + 300, "é")
            assert len(wide) < MAX_TEXT_BYTES < len(wide.encode())
            assert [e.get("code") for e in await sock.send_and_sync(wide)] == ["message_too_large"]
            # A huge value in a field that must be short.
            big_emotion = json.dumps({"type": "set_emotion", "emotion": "h" * (MAX_TEXT_BYTES - 64)})
            assert [e.get("code") for e in await sock.send_and_sync(big_emotion)] == ["invalid_value"]
            # Deeply nested JSON must not crash the parser (RecursionError is handled).
            deep = '{"type": "ping", "t": ' + "[" * 100_000 + "]" * 100_000 + "}"
            assert [e.get("code") for e in await sock.send_and_sync(deep)] == ["invalid_json"]
            # Past the frame limit (1 MiB) the WebSocket layer closes with 1009, only this socket.
            c = SessionClient(http, client.info)
            await c.connect()
            await c.send("x" * (4 * MAX_TEXT_BYTES + 1))
            assert await c.wait_closed(5) == 1009
            await c.close()
        finally:
            await sock.close()
        await _assert_streams(http, client.info)


# ---- multipart fuzzing ----

@dataclass(frozen=True)
class Part:
    name: str
    value: bytes
    filename: str | None
    content_type: str | None


_FIELD_NAMES = ["source_image", "emotion", "emotions", "emotions[]", "intensity", "output_format",
                "mode", "fps", "size", "codec", "idle_motion"]
_odd_names = st.sampled_from(["", "source_image ", "SOURCE_IMAGE", 'a"b', "a\r\nb", "ä", "x" * 300])
_filenames = st.none() | st.sampled_from(["../../etc/passwd", "a\x00b.jpg", "x" * 2000, "photo.jpg",
                                          "é.png", "", ".", "C:\\x.jpg"]) | st.text(max_size=20)
_ctypes = st.none() | st.sampled_from(["image/jpeg", "text/plain", "application/octet-stream",
                                       "image/*", "multipart/mixed", "", "x/y; charset=nope",
                                       "image/png\r\nX-Evil: 1"])
_text_values = st.sampled_from(["happy", "HAPPY", " sad ", "neutral,happy", '["sad","angry"]',
                                '["sad", 1]', "[", ",,,", "0.5", "-0", "1e309", "NaN", "inf", "-1",
                                "2", "0x10", "png", "jpeg", "gif", "crop", "full", "25", "0", "61",
                                "512", "130", "vp8", "VP9", "true", "maybe", "", "\x00",
                                "é" * 10]) | st.text(max_size=40)


_VALID_BASE = {"/render": [("emotion", b"happy")], "/render/batch": [("emotions", b"sad,angry")],
               "/sessions": [("fps", b"10"), ("size", b"128")]}


@st.composite
def multipart_parts(draw: st.DrawFn, portrait: bytes, path: str) -> list[Part]:
    parts = []
    if draw(st.booleans()):  # half the time: a valid request with odd extras mixed in
        parts.append(Part("source_image", portrait, draw(_filenames), draw(_ctypes)))
        parts += [Part(n, v, None, None) for n, v in _VALID_BASE[path]]
    for _ in range(draw(st.integers(0, 5))):
        name = draw(st.sampled_from(_FIELD_NAMES) | _odd_names)
        kind = draw(st.sampled_from(["text", "text", "binary", "portrait", "tiny_image"]))
        if kind == "text":
            value = draw(_text_values).encode("utf-8", "surrogatepass")
        elif kind == "binary":
            value = draw(st.binary(max_size=300))
        elif kind == "portrait":
            value = portrait
        else:  # a PNG header with nothing behind it
            value = b"\x89PNG\r\n\x1a\n" + draw(st.binary(max_size=40))
        parts.append(Part(name, value, draw(_filenames), draw(_ctypes)))
    return draw(st.permutations(parts)) if parts else parts


def encode_multipart(parts: list[Part], boundary: str = "fuzzb0undary") -> bytes:
    """Raw multipart bytes, written by hand so odd names and headers reach the server as is."""
    out = bytearray()
    for p in parts:
        disp = f'form-data; name="{p.name}"'
        if p.filename is not None:
            disp += f'; filename="{p.filename}"'
        out += f"--{boundary}\r\nContent-Disposition: {disp}\r\n".encode("utf-8", "surrogatepass")
        if p.content_type is not None:
            out += f"Content-Type: {p.content_type}\r\n".encode("utf-8", "surrogatepass")
        out += b"\r\n" + p.value + b"\r\n"
    out += f"--{boundary}--\r\n".encode()
    return bytes(out)


_request_ctypes = st.sampled_from([
    "multipart/form-data; boundary=fuzzb0undary", "multipart/form-data; boundary=fuzzb0undary",
    "multipart/form-data; boundary=fuzzb0undary", "multipart/form-data; boundary=fuzzb0undary",
    "multipart/form-data; boundary=fuzzb0undary", "multipart/form-data",
    "multipart/form-data; boundary=other", "application/x-www-form-urlencoded", "text/plain",
    "application/json", ""])


async def _check_answer(r: aiohttp.ClientResponse, allowed: set[int]) -> Any:
    assert r.status in allowed, (r.status, await r.text())
    assert r.content_type == "application/json", r.content_type
    body = await r.json()
    if r.status >= 400:
        assert set(body) == {"error"} and set(body["error"]) == {"status", "code", "message"}, body
        assert body["error"]["status"] == r.status, body
        assert "Traceback" not in body["error"]["message"] and "/work/" not in body["error"]["message"]
        if r.status in (429, 503):
            assert r.headers["Retry-After"].isdigit()
    return body


@pytest.mark.parametrize("path", ["/render", "/render/batch", "/sessions"])
async def test_multipart_fields_fuzzed(start_server, grace_hopper_jpeg: bytes, path: str) -> None:
    srv = await start_server(sessions=SessionLimits(max_sessions=3))
    allowed = SESSION_STATUSES if path == "/sessions" else RENDER_STATUSES
    statuses: dict[int, int] = {}
    codes: dict[str, int] = {}
    async with aiohttp.ClientSession() as http:
        async def check(example: tuple[list[Part], str]) -> None:
            parts, ctype = example
            headers = {"Content-Type": ctype} if ctype else {}
            async with http.post(srv.base_url + path, data=encode_multipart(parts),
                                 headers=headers) as r:
                body = await _check_answer(r, allowed)
                statuses[r.status] = statuses.get(r.status, 0) + 1
                if r.status >= 400:
                    codes[body["error"]["code"]] = codes.get(body["error"]["code"], 0) + 1
            if r.status == 201:  # free the slot again
                async with http.delete(f"{srv.base_url}/sessions/{body['session_id']}") as d:
                    assert d.status == 200

        strategy = st.tuples(multipart_parts(grace_hopper_jpeg, path), _request_ctypes)
        tried = await asyncio.to_thread(run_hypothesis, asyncio.get_running_loop(), strategy,
                                        check, EXAMPLES_FORM)
        print(f"\nmultipart fuzz {path}: {tried} requests, statuses {dict(sorted(statuses.items()))}, "
              f"codes {dict(sorted(codes.items()))}")
        assert 500 not in statuses and len(statuses) >= 3
        assert statuses.get(201 if path == "/sessions" else 200), "fuzzing never got past the checks"

        # Still serving: a valid request succeeds.
        form = aiohttp.FormData()
        form.add_field("source_image", grace_hopper_jpeg, filename="g.jpg", content_type="image/jpeg")
        if path == "/render":
            form.add_field("emotion", "happy")
        elif path == "/render/batch":
            form.add_field("emotions", "happy,sad")
        async with http.post(srv.base_url + path, data=form) as r:
            assert r.status in (200, 201), await r.text()


# ---- SDP and ICE ----

async def _client_offer() -> tuple[RTCPeerConnection, str]:
    pc = RTCPeerConnection()
    pc.addTransceiver("video", direction="recvonly")
    await pc.setLocalDescription(await pc.createOffer())
    return pc, pc.localDescription.sdp


def _bad_sdps(good: str) -> list[str]:
    lines = good.split("\r\n")
    no_media = "\r\n".join(ln for ln in lines if not ln.startswith(("m=", "a=mid", "a=rtpmap")))
    no_fingerprint = "\r\n".join(ln for ln in lines if not ln.startswith("a=fingerprint"))
    bad_port = re.sub(r"m=video \d+ ", "m=video notaport ", good, count=1)
    audio_only = good.replace("m=video ", "m=audio ", 1)
    sendonly = good.replace("a=recvonly", "a=sendonly")
    odd_candidate = good.replace("a=mid:0", "a=mid:0\r\na=candidate:1 1 udp 2122260223 "
                                 "224.0.0.1 5000 typ host", 1)
    return ["v=0", "garbage\r\n\r\n", good[: len(good) // 2], no_media, no_fingerprint, bad_port,
            audio_only, sendonly, odd_candidate, "v=0\r\n" + "a=" + "\x00" * 100,
            good.replace("a=ice-pwd:", "a=x-pwd:")]


def _odd_but_harmless_sdps(good: str) -> list[str]:
    """aiortc is lenient with these: an answer or an sdp_error are both clean outcomes."""
    return [good.replace("\r\n", "\n").replace("v=0", "v=1", 1),
            good.replace("ice-ufrag:", "ice-ufrag:\u202e")]


ODD_CANDIDATES = [
    "candidate:1 1 udp 2122260223 0.0.0.0 50000 typ host",
    "candidate:1 1 udp 2122260223 255.255.255.255 50000 typ host",
    "candidate:1 1 udp 2122260223 224.0.0.1 50000 typ host",
    "candidate:1 1 udp 2122260223 ff02::1 50000 typ host",
    "candidate:1 1 udp 2122260223 :: 50000 typ host",
    "candidate:1 1 udp 2122260223 169.254.10.20 50000 typ host",
    "candidate:1 1 udp 2122260223 fe80::1 50000 typ host",
    "candidate:1 1 udp 2122260223 fe80::1%eth0 50000 typ host",
    "candidate:1 1 udp 2122260223 example.com 50000 typ host",
    "candidate:1 1 udp 2122260223 localhost 50000 typ host",
    "candidate:1 1 udp 2122260223 127.0.0.1 0 typ host",
    "candidate:1 1 udp 2122260223 127.0.0.1 65536 typ host",
    "candidate:1 1 udp 2122260223 127.0.0.1 -1 typ host",
    "candidate:1 1 sctp 2122260223 127.0.0.1 5000 typ host",
    "candidate:1 1 udp 2122260223 127.0.0.1 5000 typ bogus",
    "candidate:1 1 udp 2122260223 240.0.0.1 5000 typ host",
    "candidate:1 1 udp 2122260223 ::ffff:224.0.0.1 5000 typ host",
    "candidate:garbage",
    "candidate:1 1 udp x 127.0.0.1 5000 typ host",
    "",  # empty: ends trickling, accepted
]


async def test_sdp_and_ice_attacks(server, grace_hopper_jpeg: bytes) -> None:
    async with aiohttp.ClientSession() as http:
        client = await SessionClient.create(http, server.base_url, grace_hopper_jpeg, fps=10, size=128)
        sock = _Socket(http, client.info)
        pc, good = await _client_offer()
        await pc.close()
        try:
            for sdp in _bad_sdps(good):
                replies = await sock.send_and_sync(json.dumps({"type": "offer", "sdp": sdp}))
                assert [e.get("code") for e in replies] == ["sdp_error"], (sdp[:80], replies)
            for sdp in _odd_but_harmless_sdps(good):
                replies = await sock.send_and_sync(json.dumps({"type": "offer", "sdp": sdp}))
                assert [e.get("code") or e["type"] for e in replies] in (["answer"], ["sdp_error"])
            for bad in (None, 5, [], {"sdp": good}):
                replies = await sock.send_and_sync(json.dumps({"type": "offer", "sdp": bad}))
                assert [e.get("code") for e in replies] == ["invalid_message"]

            # Huge SDP: a real offer padded with attribute lines to just under / over the limit.
            head = json.dumps({"type": "offer", "sdp": good})
            pad_line = "a=x-pad:" + "p" * 90 + "\r\n"
            room = MAX_TEXT_BYTES - len(head.encode()) - 200
            padded = good + pad_line * (room // (len(json.dumps(pad_line)) - 2))  # JSON escapes
            under = json.dumps({"type": "offer", "sdp": padded})
            assert MAX_TEXT_BYTES - 400 < len(under.encode()) <= MAX_TEXT_BYTES
            codes = [e.get("code") or e["type"] for e in await sock.send_and_sync(under)]
            assert codes in (["answer"], ["sdp_error"]), codes
            over = json.dumps({"type": "offer", "sdp": padded + pad_line * 3})
            assert len(over.encode()) > MAX_TEXT_BYTES
            assert [e.get("code") for e in await sock.send_and_sync(over)] == ["message_too_large"]
        finally:
            await sock.close()

        # Odd candidates on a live viewer: each refused before aioice sees it; video flows on.
        viewer_client = SessionClient(http, client.info)
        await viewer_client.connect()
        try:
            await viewer_client.start_video()
            await viewer_client.next_video_frame(timeout=10)
            session = registry_of(server.state).get(client.session_id)
            assert session is not None
            # the fuzzing socket's viewers close when it goes away
            await wait_until(lambda: len(session.viewers) == 1)
            [viewer] = list(session.viewers)
            ice = viewer.pc.getTransceivers()[0].receiver.transport.transport._connection
            before = list(ice.remote_candidates)
            for i, cand in enumerate(ODD_CANDIDATES):
                n = len(viewer_client.events)
                await viewer_client.send({"type": "candidate", "id": i, "candidate": {
                    "candidate": cand, "sdpMid": "0", "sdpMLineIndex": 0}})
                await viewer_client.send({"type": "ping", "id": f"p{i}"})
                await viewer_client.wait_for("pong", after=n, id=f"p{i}")
                errors = [e for e in viewer_client.events[n:] if e.get("type") == "error"]
                if cand:
                    assert [e["code"] for e in errors] == ["invalid_value"], (cand, errors)
                    assert errors[0]["id"] == i and errors[0]["request_type"] == "candidate"
                else:
                    assert errors == []
            assert [c.host for c in ice.remote_candidates] == [c.host for c in before]
            viewer_client.drain_video()
            await viewer_client.next_video_frame(timeout=10)  # the session still streams
        finally:
            await viewer_client.close()
        await _assert_streams(http, client.info)


def test_candidate_policy_table() -> None:
    """The policy itself, including what it must let through."""
    from streamer.sessions.candidate_policy import candidate_problem, offer_candidates_problem

    ok = ["127.0.0.1", "::1", "192.168.1.20", "10.0.0.2", "8.8.8.8", "2001:db8::1",
          "0b1f2c3d-aaaa-bbbb-cccc-0123456789ab.local"]
    for host in ok:
        assert candidate_problem(host, 5000, "udp", "host") is None, host
    bad = ["0.0.0.0", "::", "255.255.255.255", "224.0.0.1", "239.255.255.250", "ff02::1",
           "169.254.1.1", "fe80::1", "fe80::1%eth0", "240.0.0.1", "::ffff:0.0.0.0",
           "example.com", "localhost", "a..local", "", "x" * 300 + ".local"]
    for host in bad:
        assert candidate_problem(host, 5000, "udp", "host") is not None, host
    assert candidate_problem("127.0.0.1", 0, "udp", "host") is not None
    assert candidate_problem("127.0.0.1", 65536, "udp", "host") is not None
    assert candidate_problem("127.0.0.1", 5000, "TCP", "srflx") is None
    assert candidate_problem("127.0.0.1", 5000, "sctp", "host") is not None
    sdp = "v=0\r\na=candidate:1 1 udp 1 192.168.1.2 5000 typ host\r\n"
    assert offer_candidates_problem(sdp) is None
    assert "multicast" in offer_candidates_problem(sdp + "a=candidate:2 1 udp 1 224.0.0.1 5 typ host\r\n")

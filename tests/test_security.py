"""Access control: API keys, session tokens, CORS and WebSocket Origin, security headers,
per-key limits, the public-bind warning, and error messages without paths.

Real servers on 127.0.0.1 (conftest start_server, MeshEngine), real aiohttp HTTP/WebSocket
clients. Sessions use 128 px frames and no idle motion to keep the CPU share low.
"""
from __future__ import annotations

import asyncio
import json
import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest

from engine.api import InvalidImageError
from streamer.routes import OPEN_PATHS as OPEN_ROUTES
from streamer.access.cli import warn_public_bind
from streamer.config import AccessConfig
from avatar_testkit.pyclient import portrait_form
from streamer.http.web_routes import PAGE_CSP

KEY = "test-key-0123456789abcdef"
KEY2 = "test-key-fedcba9876543210"
SMALL = {"size": "128", "idle_motion": "false", "fps": "5"}
ALLOWED = "http://allowed.example"
EVIL = "http://evil.example"


def auth(key: str = KEY) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}




async def create_session(http: aiohttp.ClientSession, base: str, image: bytes,
                         key: str | None = KEY) -> tuple[int, dict]:
    headers = auth(key) if key else {}
    async with http.post(base + "/sessions", data=portrait_form(image, **SMALL), headers=headers) as r:
        return r.status, await r.json()


def assert_json_error(status: int, body: dict, want_status: int, code: str) -> None:
    assert status == want_status, body
    assert body["error"]["code"] == code, body


async def keyed(start_server, **access):
    return await start_server(access=AccessConfig(api_keys=[KEY, KEY2], **access))


def concrete_routes(app) -> list[tuple[str, str, str]]:
    """(method, template, a concrete path) for every route the app has."""
    out = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None or route.method in ("HEAD", "*"):
            continue
        template = resource.canonical
        path = (template.replace("{session_id}", "nosuchsession").replace("{filename}", "x.png")
                .replace("{name}", "index.html").replace("{folder}", "js"))
        out.append((route.method, template, path))
    return out


# ---- keys ----

async def test_no_key_or_wrong_key_is_401_on_every_rest_route(start_server):
    srv = await keyed(start_server)
    routes = concrete_routes(srv.app)
    assert {t for _, t, _ in routes} >= {"/render", "/render/batch", "/sessions", "/output/{filename}",
                                         "/sessions/{session_id}", "/metrics", "/health"}
    async with aiohttp.ClientSession() as http:
        for method, template, path in routes:
            for headers in ({}, auth("wrong-key-0123456789abcdef"), {"Authorization": "Basic a2V5Og=="},
                            {"Authorization": "Bearer "}):
                async with http.request(method, srv.base_url + path, headers=headers) as r:
                    if template in OPEN_ROUTES or template == "/metrics":
                        assert r.status != 401, (method, path)
                        continue
                    body = await r.json()
                    assert_json_error(r.status, body, 401, "unauthorized")
                    assert r.headers["WWW-Authenticate"].startswith("Bearer")
        async with http.get(srv.base_url + "/health") as r:
            assert r.status == 200 and (await r.json())["status"] == "healthy"


async def test_right_key_works_and_keys_never_reach_the_logs(start_server, grace_hopper_jpeg, caplog):
    srv = await keyed(start_server)
    async with aiohttp.ClientSession() as http:
        for key in (KEY, KEY2):
            async with http.get(srv.base_url + "/sessions", headers=auth(key)) as r:
                assert r.status == 200 and (await r.json()) == {"sessions": []}
        form = portrait_form(grace_hopper_jpeg, emotion="happy")
        async with http.post(srv.base_url + "/render", data=form,
                             headers={**auth(), "Accept": "image/png"}) as r:
            assert r.status == 200 and r.headers["Content-Type"] == "image/png"
    assert KEY not in caplog.text and KEY2 not in caplog.text


async def test_metrics_open_by_default_keyed_with_metrics_auth(start_server):
    open_srv = await keyed(start_server)
    closed_srv = await keyed(start_server, metrics_auth=True)
    async with aiohttp.ClientSession() as http:
        async with http.get(open_srv.base_url + "/metrics") as r:
            assert r.status == 200
        async with http.get(closed_srv.base_url + "/metrics") as r:
            assert_json_error(r.status, await r.json(), 401, "unauthorized")
        async with http.get(closed_srv.base_url + "/metrics", headers=auth()) as r:
            assert r.status == 200 and "# TYPE" in await r.text()


async def test_no_keys_means_open_and_no_session_token(start_server, astronaut_jpeg):
    srv = await start_server()
    async with aiohttp.ClientSession() as http:
        status, body = await create_session(http, srv.base_url, astronaut_jpeg, key=None)
        assert status == 201 and "session_token" not in body
        async with http.delete(f"{srv.base_url}/sessions/{body['session_id']}") as r:
            assert r.status == 200


# ---- session tokens ----

async def _hello(ws: aiohttp.ClientWebSocketResponse) -> dict:
    msg = await asyncio.wait_for(ws.receive(), 10)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    return json.loads(msg.data)


async def _expect_handshake_refused(http, url: str, status: int, **kwargs) -> None:
    with pytest.raises(aiohttp.WSServerHandshakeError) as info:
        async with http.ws_connect(url, **kwargs):
            pass
    assert info.value.status == status


async def test_session_token_opens_and_controls_only_its_own_session(start_server, astronaut_jpeg,
                                                                     grace_hopper_jpeg):
    srv = await keyed(start_server)
    async with aiohttp.ClientSession() as backend, aiohttp.ClientSession() as browser:
        st, mine = await create_session(backend, srv.base_url, astronaut_jpeg)
        assert st == 201, mine
        st, other = await create_session(backend, srv.base_url, grace_hopper_jpeg)
        assert st == 201, other
        token, sid, other_sid = mine["session_token"], mine["session_id"], other["session_id"]
        assert len(token) >= 32 and token != other["session_token"]
        ws_url = f"{srv.ws_base}/sessions/{sid}/ws"

        # The query parameter.
        async with browser.ws_connect(f"{ws_url}?token={token}") as ws:
            assert (await _hello(ws))["session_id"] == sid
            await ws.send_json({"type": "set_emotion", "emotion": "happy", "transition_ms": 0, "id": 1})
            while True:
                ev = json.loads((await asyncio.wait_for(ws.receive(), 10)).data)
                if ev["type"] == "state":
                    break
            assert ev["id"] == 1 and ev["target"]["emotions"]["happy"] > 0
        # The subprotocol, echoed back (a browser drops the socket otherwise).
        proto = f"lpa-token.{token}"
        async with browser.ws_connect(ws_url, protocols=(proto,)) as ws:
            assert ws.protocol == proto
            assert (await _hello(ws))["session_id"] == sid
        # A key still works on the WebSocket (non-browser clients), a bad token does not.
        async with browser.ws_connect(ws_url, headers=auth()) as ws:
            assert (await _hello(ws))["type"] == "hello"
        await _expect_handshake_refused(browser, ws_url, 401)
        await _expect_handshake_refused(browser, f"{ws_url}?token=not-a-token", 401)
        await _expect_handshake_refused(browser, ws_url, 401, protocols=("lpa-token.nope",))

        # Nothing else: another session's socket, REST render, listing, creating, deleting others.
        tok = {"Authorization": f"Bearer {token}"}
        await _expect_handshake_refused(browser, f"{srv.ws_base}/sessions/{other_sid}/ws?token={token}", 403)
        await _expect_handshake_refused(browser, f"{srv.ws_base}/sessions/{other_sid}/ws", 403,
                                        protocols=(proto,))
        for method, path, data in (
                ("POST", "/render", portrait_form(astronaut_jpeg, emotion="happy")),
                ("POST", "/render/batch", portrait_form(astronaut_jpeg, emotions="happy")),
                ("POST", "/sessions", portrait_form(astronaut_jpeg)),
                ("GET", "/sessions", None),
                ("GET", f"/sessions/{other_sid}", None),
                ("DELETE", f"/sessions/{other_sid}", None),
                ("GET", "/output/x.png", None)):
            async with browser.request(method, srv.base_url + path, data=data, headers=tok) as r:
                assert_json_error(r.status, await r.json(), 403, "forbidden")
        # The token in the query is for WebSockets only.
        async with browser.get(f"{srv.base_url}/sessions/{sid}?token={token}") as r:
            assert r.status == 401
        # Its own session: read it, then clean up.
        async with browser.get(f"{srv.base_url}/sessions/{sid}", headers=tok) as r:
            assert r.status == 200 and (await r.json())["session_id"] == sid
        async with browser.delete(f"{srv.base_url}/sessions/{sid}", headers=tok) as r:
            assert r.status == 200
        async with backend.get(f"{srv.base_url}/sessions/{other_sid}", headers=auth()) as r:
            assert r.status == 200  # the other session is untouched
        # A dead session's token opens nothing.
        await _expect_handshake_refused(browser, f"{ws_url}?token={token}", 404)


async def test_a_session_belongs_to_the_key_that_created_it(start_server, astronaut_jpeg):
    srv = await keyed(start_server)
    async with aiohttp.ClientSession() as http:
        st, mine = await create_session(http, srv.base_url, astronaut_jpeg, key=KEY)
        assert st == 201, mine
        sid = mine["session_id"]
        # The other key neither sees, reads, controls nor deletes it: it does not exist for them.
        async with http.get(srv.base_url + "/sessions", headers=auth(KEY2)) as r:
            assert r.status == 200 and (await r.json())["sessions"] == []
        for method in ("GET", "DELETE"):
            async with http.request(method, f"{srv.base_url}/sessions/{sid}", headers=auth(KEY2)) as r:
                assert_json_error(r.status, await r.json(), 404, "not_found")
        await _expect_handshake_refused(http, f"{srv.ws_base}/sessions/{sid}/ws", 404,
                                        headers=auth(KEY2))
        # Its owner still has it.
        async with http.get(srv.base_url + "/sessions", headers=auth(KEY)) as r:
            assert [s["session_id"] for s in (await r.json())["sessions"]] == [sid]
        async with http.delete(f"{srv.base_url}/sessions/{sid}", headers=auth(KEY)) as r:
            assert r.status == 200


# ---- CORS and Origin ----

async def test_cors_allowed_disallowed_and_preflight(start_server):
    srv = await keyed(start_server, cors_origins=[ALLOWED])
    default = await start_server()
    pre = {"Access-Control-Request-Method": "POST",
           "Access-Control-Request-Headers": "authorization, content-type"}
    async with aiohttp.ClientSession() as http:
        async with http.options(srv.base_url + "/render", headers={"Origin": ALLOWED, **pre}) as r:
            assert r.status == 204
            assert r.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert "POST" in r.headers["Access-Control-Allow-Methods"]
            assert "Authorization" in r.headers["Access-Control-Allow-Headers"]
            assert "Origin" in r.headers["Vary"]
        for base, origin in ((srv.base_url, EVIL), (default.base_url, ALLOWED)):
            async with http.options(base + "/render", headers={"Origin": origin, **pre}) as r:
                assert_json_error(r.status, await r.json(), 403, "origin_not_allowed")
                assert "Access-Control-Allow-Origin" not in r.headers
        async with http.get(srv.base_url + "/sessions", headers={"Origin": ALLOWED, **auth()}) as r:
            assert r.status == 200 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
            assert "Origin" in r.headers["Vary"]
            assert "Retry-After" in r.headers["Access-Control-Expose-Headers"]
        async with http.get(srv.base_url + "/sessions", headers={"Origin": ALLOWED}) as r:
            assert r.status == 401 and r.headers["Access-Control-Allow-Origin"] == ALLOWED
        async with http.get(srv.base_url + "/sessions", headers={"Origin": EVIL, **auth()}) as r:
            assert "Access-Control-Allow-Origin" not in r.headers
        # A state-changing request from a foreign page is refused outright (no CSRF on localhost).
        async with http.post(default.base_url + "/render", data=b"x",
                             headers={"Origin": EVIL, "Content-Type": "multipart/form-data; boundary=b"}) as r:
            assert_json_error(r.status, await r.json(), 403, "origin_not_allowed")
        # Same-origin requests (the demo page) are not cross-origin at all.
        async with http.post(default.base_url + "/render", data=b"x", headers={
                "Origin": default.base_url, "Content-Type": "text/plain"}) as r:
            assert r.status == 415


async def test_websocket_origin_check(start_server, astronaut_jpeg):
    srv = await start_server(access=AccessConfig(cors_origins=[ALLOWED]))
    async with aiohttp.ClientSession() as http:
        st, body = await create_session(http, srv.base_url, astronaut_jpeg, key=None)
        assert st == 201
        url = f"{srv.ws_base}/sessions/{body['session_id']}/ws"
        with pytest.raises(aiohttp.WSServerHandshakeError) as info:
            async with http.ws_connect(url, origin=EVIL):
                pass
        assert info.value.status == 403
        async with http.get(url, headers={"Origin": EVIL, "Upgrade": "websocket", "Connection": "Upgrade",
                                          "Sec-WebSocket-Version": "13",
                                          "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ=="}) as r:
            assert_json_error(r.status, await r.json(), 403, "origin_not_allowed")
        for origin in (ALLOWED, srv.base_url, None):
            async with http.ws_connect(url, origin=origin) as ws:
                assert (await _hello(ws))["type"] == "hello"
        async with http.delete(f"{srv.base_url}/sessions/{body['session_id']}") as r:
            assert r.status == 200


# ---- serving defaults ----

async def test_page_csp_and_security_headers(server):
    async with aiohttp.ClientSession() as http:
        async with http.get(server.base_url + "/") as r:
            assert r.status == 200
            h = r.headers
        assert h["Content-Security-Policy"] == PAGE_CSP
        assert "script-src 'self'" in PAGE_CSP and "'unsafe-inline'" not in PAGE_CSP
        assert "frame-ancestors 'none'" in PAGE_CSP
        assert h["X-Content-Type-Options"] == "nosniff"
        assert h["Referrer-Policy"] == "no-referrer"
        assert h["X-Frame-Options"] == "DENY"
        async with http.get(server.base_url + "/health") as r:
            assert r.headers["X-Content-Type-Options"] == "nosniff"
            assert r.headers["X-Frame-Options"] == "DENY"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_public_bind_without_keys_warns_loudly(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "LPA_API_KEYS"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamer", "serve", "--host", "0.0.0.0", "--port", str(_free_port()),
         "--engine", "mesh", "--engine-process", "off", "--output-dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env,
        cwd=Path(__file__).resolve().parent.parent)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            line = proc.stderr.readline()  # the warning comes before the engine loads
            if not line:
                break
            lines.append(line)
            if sum(1 for x in lines if x.startswith("!!!!")) >= 2:
                break
    finally:
        proc.terminate()
        proc.wait(10)
        proc.stderr.close()
    text = "".join(lines)
    assert "WARNING" in text and "0.0.0.0" in text and "WITHOUT API KEYS" in text, text
    assert sum(1 for x in lines if x.startswith("!!")) >= 5


def test_no_warning_on_loopback_or_with_keys(capsys):
    import io
    for host, keys in (("127.0.0.1", []), ("::1", []), ("localhost", []), ("0.0.0.0", [KEY])):
        buf = io.StringIO()
        assert warn_public_bind(host, AccessConfig(api_keys=keys), buf) is False and not buf.getvalue()
    buf = io.StringIO()
    assert warn_public_bind("192.168.1.5", AccessConfig(), buf) is True and "WARNING" in buf.getvalue()


def test_serve_binds_loopback_by_default():
    from streamer.cli import build_parser
    assert build_parser().parse_args(["serve"]).host == "127.0.0.1"


# ---- per-key limits ----

async def test_token_bucket_429_with_retry_after_then_recovers(start_server):
    # 0.5/s: a token takes 2 s to come back, so a slow, shared CPU cannot refill the bucket
    # between the three requests below.
    srv = await keyed(start_server, rate_limit_rps=0.5, rate_burst=2)
    # An empty text/plain body costs a token and is refused (415) before any engine work.
    bad = {"Content-Type": "text/plain"}
    async with aiohttp.ClientSession() as http:
        statuses = []
        for _ in range(3):
            async with http.post(srv.base_url + "/render", data=b"", headers={**auth(), **bad}) as r:
                statuses.append(r.status)
                last = (r.status, dict(r.headers), await r.json())
        assert statuses[:2] == [415, 415]
        assert_json_error(last[0], last[2], 429, "rate_limited")
        retry = int(last[1]["Retry-After"])
        assert retry == 2  # (almost) a whole token missing at 0.5/s, rounded up to whole seconds
        # Another key has its own bucket; session GETs are not metered.
        async with http.post(srv.base_url + "/render/batch", data=b"", headers={**auth(KEY2), **bad}) as r:
            assert r.status == 415
        async with http.get(srv.base_url + "/sessions", headers=auth()) as r:
            assert r.status == 200
        await asyncio.sleep(retry)
        async with http.post(srv.base_url + "/render", data=b"", headers={**auth(), **bad}) as r:
            assert r.status == 415


async def test_sessions_per_key_limit(start_server, astronaut_jpeg):
    srv = await keyed(start_server, max_sessions_per_key=1)
    async with aiohttp.ClientSession() as http:
        st, first = await create_session(http, srv.base_url, astronaut_jpeg)
        assert st == 201
        st, body = await create_session(http, srv.base_url, astronaut_jpeg)
        assert_json_error(st, body, 429, "too_many_sessions")
        st, other = await create_session(http, srv.base_url, astronaut_jpeg, key=KEY2)
        assert st == 201
        async with http.delete(f"{srv.base_url}/sessions/{first['session_id']}", headers=auth()) as r:
            assert r.status == 200
        st, again = await create_session(http, srv.base_url, astronaut_jpeg)
        assert st == 201
        for s, key in ((other, KEY2), (again, KEY)):
            async with http.delete(f"{srv.base_url}/sessions/{s['session_id']}", headers=auth(key)) as r:
                assert r.status == 200


async def test_key_upload_and_pixel_limits(start_server, grace_hopper_jpeg):
    assert len(grace_hopper_jpeg) > 40_000
    small_upload = await keyed(start_server, key_max_upload_mb=0.03)
    few_pixels = await keyed(start_server, key_max_image_pixels=10_000)
    anon = await start_server()  # no keys: the global limits
    async with aiohttp.ClientSession() as http:
        for srv, status, code in ((small_upload, 413, "file_too_large"), (few_pixels, 413, "image_too_large")):
            for path in ("/render", "/sessions"):
                async with http.post(srv.base_url + path, headers=auth(),
                                     data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
                    assert_json_error(r.status, await r.json(), status, code)
        async with http.post(anon.base_url + "/render", headers={"Accept": "image/png"},
                             data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            assert r.status == 200


# ---- error messages ----

_LEAK = re.compile(r"Traceback|File \"|/(?:tmp|home|work|usr|root|etc|opt|var)/|\.py\b|[A-Z]:\\\\")


class _CarelessEngine:
    """The real mesh engine, except prepare fails with a message that names a file."""

    def __init__(self, inner) -> None:
        self._inner = inner
        self.name, self.info = inner.name, inner.info

    def prepare(self, image):  # type: ignore[no-untyped-def]
        raise InvalidImageError("cannot read /home/alice/secret/model.onnx: Traceback (most recent call)")

    def render(self, jobs, mode="crop", size=None):  # type: ignore[no-untyped-def]
        return self._inner.render(jobs, mode=mode, size=size)

    def release(self, source) -> None:  # type: ignore[no-untyped-def]
        self._inner.release(source)


async def test_error_messages_reveal_no_paths_or_tracebacks(start_server, mesh_engine, grace_hopper_jpeg,
                                                            cat_jpeg, tmp_path):
    careless = await start_server(engine=_CarelessEngine(mesh_engine))
    srv = await start_server(output_dir=tmp_path / "out")
    requests = [
        (careless, "POST", "/render", portrait_form(grace_hopper_jpeg, emotion="happy")),
        (careless, "POST", "/sessions", portrait_form(grace_hopper_jpeg)),
        (srv, "POST", "/render", portrait_form(cat_jpeg, emotion="happy")),
        (srv, "POST", "/render", portrait_form(b"\xff\xd8garbage", emotion="happy")),
        (srv, "GET", "/output/..%2F..%2Fetc%2Fpasswd", None),
        (srv, "GET", "/output/nothing.png", None),
        (srv, "GET", "/samples/nosuch", None),
        (srv, "GET", "/js/..%2Fapp.py", None),
        (srv, "POST", "/render", b"--b\r\ngarbage"),
    ]
    async with aiohttp.ClientSession() as http:
        for handle, method, path, data in requests:
            headers = {"Content-Type": "multipart/form-data; boundary=b"} if isinstance(data, bytes) else {}
            async with http.request(method, handle.base_url + path, data=data, headers=headers) as r:
                text = await r.text()
                assert r.status >= 400, (path, text)
                assert json.loads(text)["error"]["message"], text
                assert not _LEAK.search(text), (path, text)
        async with http.get(srv.base_url + "/health") as r:
            assert r.status == 200  # and the server keeps serving


# ---- configuration and logs ----

def test_keys_from_flags_and_env_and_bad_flags_exit_cleanly():
    from streamer.access.cli import access_config_from_args, keys_from
    from streamer.cli import build_parser

    assert keys_from([KEY], {"LPA_API_KEYS": f" {KEY2}, ,{KEY}"}) == [KEY, KEY2]
    assert keys_from([], {}) == []
    parse = build_parser().parse_args
    cfg = access_config_from_args(parse(["serve", "--api-key", KEY, "--cors-origin", ALLOWED,
                                         "--rate-limit", "5", "--max-sessions-per-key", "2"]))
    assert KEY in cfg.api_keys and cfg.cors_origins == [ALLOWED] and cfg.rate_limit_rps == 5.0
    for argv in (["--api-key", "short"], ["--rate-limit", "0"], ["--cors-origin", "evil.example"],
                 ["--max-sessions-per-key", "0"]):
        with pytest.raises(SystemExit) as info:
            access_config_from_args(parse(["serve", *argv]))
        assert "short" not in str(info.value.code)  # a rejected key is never echoed


def test_access_log_redacts_tokens():
    from aiohttp.test_utils import make_mocked_request

    from streamer.access.control import redact_path

    req = make_mocked_request("GET", "/sessions/abc/ws?token=s3cret&x=1")
    assert redact_path(req) == "/sessions/abc/ws?token=REDACTED&x=1"
    assert redact_path(make_mocked_request("GET", "/health")) == "/health"

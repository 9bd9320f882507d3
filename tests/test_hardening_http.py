"""Issue 15, the HTTP half: each class of defect, tried across the whole class.

- Stalled uploads: every route that takes a body, Content-Length and chunked framing; while
  they stall, other clients and other API keys still create sessions; each stalled request
  is answered 408 after the body deadline and its connection closed.
- Upload limit: every byte of the body counts, whatever the part (named, unnamed, unknown
  name, nested) and the framing (Content-Length, chunked, gzip).
- DNS rebinding: every route and the WebSocket upgrade refuse a foreign Host.
- Errors are JSON even below the application (bad framing) and for 416; Accept q-values.
- Outputs: 0700 folder, 0600 files, a folder someone else owns is refused.
- Cost budget: past it 413 on every rendering route; REST work yields to session ticks.
"""
from __future__ import annotations

import asyncio
import gzip
import io
import json
import os
import stat
import threading
import time
from pathlib import Path

import aiohttp
import pytest
from PIL import Image

from avatar_testkit.pyclient import SessionClient, portrait_form
from avatar_testkit.wait import wait_until
from streamer.config import AccessConfig, SessionLimits

KEY_A = "key-a-0123456789abcdef"
KEY_B = "key-b-0123456789abcdef"
BOUNDARY = "hardeningboundary"


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


# ---------------------------------------------------------------- raw HTTP helpers

async def _raw(port: int, data: bytes) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    return reader, writer


async def _read_response(reader: asyncio.StreamReader, timeout: float = 60.0) -> tuple[int, dict, bytes, bool]:
    """(status, headers, body, closed) of one HTTP/1.1 response read off a raw socket;
    closed: the server closed the connection after it."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {}
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            headers[k.strip().lower()] = v.strip()
    n = int(headers.get("content-length", "0"))
    body = await asyncio.wait_for(reader.readexactly(n), timeout) if n else b""
    rest = await asyncio.wait_for(reader.read(), timeout)  # EOF once the server closes
    return status, headers, body, rest == b""


def _stalled_request(port: int, path: str, chunked: bool, headers: dict[str, str] | None = None) -> bytes:
    """Headers and the start of a body that promises much more, then nothing. Multipart, or
    urlencoded when headers ask for it."""
    headers = dict(headers or {})
    ctype = headers.pop("Content-Type", f"multipart/form-data; boundary={BOUNDARY}")
    if ctype.startswith("multipart/"):
        first = (f"--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"source_image\"; "
                 f"filename=\"a.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n").encode() + b"\xff\xd8\xff\xe0"
    else:
        first = b"emotion=happy&fps=2"
    lines = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Content-Type: {ctype}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    if chunked:
        lines.append("Transfer-Encoding: chunked")
        body = f"{len(first):x}\r\n".encode() + first + b"\r\n"
    else:
        lines.append("Content-Length: 200000")
        body = first
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _stall_all(srv, specs: list[tuple[str, bool, dict[str, str]]]) -> list:
    """Open one stalled request per spec and wait until the server is handling all of them."""
    server = srv.runner.server
    before = server.requests_count
    conns = [await _raw(srv.port, _stalled_request(srv.port, path, chunked, hdrs))
             for path, chunked, hdrs in specs]
    await wait_until(lambda: server.requests_count >= before + len(specs),
                     message="the stalled requests never reached the server")
    await asyncio.sleep(0.2)  # their handlers run up to the body read (same loop: no race)
    return conns


async def _assert_timed_out(conns: list, started: float, deadline: float) -> None:
    for reader, writer in conns:
        status, headers, body, closed = await _read_response(reader)
        assert status == 408, body
        assert headers["content-type"].startswith("application/json")
        assert json.loads(body)["error"]["code"] == "body_timeout"
        assert closed, "the connection must close after a body timeout"
        writer.close()
    assert time.monotonic() - started >= deadline * 0.9  # answered after the deadline, not before


# ---------------------------------------------------------------- 1. stalled uploads

BODY_ROUTES = ("/sessions", "/render", "/render/batch")


async def test_stalled_uploads_hold_no_session_slot(start_server, grace_hopper_jpeg, astronaut_jpeg):
    deadline = 8.0
    srv = await start_server(body_timeout_s=deadline, sessions=SessionLimits(max_sessions=2))
    # More stalled session uploads than there are slots, both framings, and every body route.
    specs = [("/sessions", chunked, {}) for chunked in (False, True, False, True)]
    specs += [(path, chunked, {}) for path in BODY_ROUTES[1:] for chunked in (False, True)]
    urlencoded = {"Content-Type": "application/x-www-form-urlencoded"}
    specs += [("/sessions", False, urlencoded), ("/render", True, urlencoded)]
    started = time.monotonic()
    conns = await _stall_all(srv, specs)
    async with aiohttp.ClientSession() as http:
        a = await SessionClient.create(http, srv.base_url, grace_hopper_jpeg)
        b = await SessionClient.create(http, srv.base_url, astronaut_jpeg)
        assert a.session_id != b.session_id
        async with http.post(srv.base_url + "/render", data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            assert r.status == 200, await r.text()
    await _assert_timed_out(conns, started, deadline)
    assert srv.state.sessions._reserved == 0
    assert len(srv.state.sessions.active()) == 2


async def test_stalled_uploads_hold_no_key_quota(start_server, grace_hopper_jpeg, astronaut_jpeg):
    deadline = 8.0
    access = AccessConfig(api_keys=[KEY_A, KEY_B], max_sessions_per_key=1)
    srv = await start_server(body_timeout_s=deadline, access=access,
                             sessions=SessionLimits(max_sessions=3))
    specs = [("/sessions", chunked, _auth(KEY_A)) for chunked in (False, True, True)]
    specs += [("/sessions", False, _auth(KEY_B)), ("/render/batch", True, _auth(KEY_B))]
    started = time.monotonic()
    conns = await _stall_all(srv, specs)
    async with aiohttp.ClientSession() as http:
        for key, photo in ((KEY_A, grace_hopper_jpeg), (KEY_B, astronaut_jpeg)):
            async with http.post(srv.base_url + "/sessions", headers=_auth(key),
                                 data=portrait_form(photo)) as r:
                assert r.status == 201, await r.text()
        # The quota itself still holds once sessions exist.
        async with http.post(srv.base_url + "/sessions", headers=_auth(KEY_A),
                             data=portrait_form(astronaut_jpeg)) as r:
            assert r.status == 429 and (await r.json())["error"]["code"] == "too_many_sessions"
    await _assert_timed_out(conns, started, deadline)
    assert not srv.state.access.pending


def _post_routes(sid: str) -> list[str]:
    """Every POST route of the route table, session ids filled in: each reads a body."""
    from streamer.routes import ROUTES

    return [r.path.replace("{session_id}", sid) for r in ROUTES if r.method == "POST"]


async def test_every_body_route_has_a_deadline(start_server, grace_hopper_jpeg):
    """The whole class: every POST route in streamer/routes.py (new ones included, without
    editing this test) answers a body that stops arriving with 408 after the deadline."""
    deadline = 6.0
    srv = await start_server(body_timeout_s=deadline)
    async with aiohttp.ClientSession() as http:
        c = await SessionClient.create(http, srv.base_url, grace_hopper_jpeg)
        paths = _post_routes(c.session_id)
        assert {"/sessions", "/render", "/render/batch", "/render/video",
                f"/sessions/{c.session_id}/speech"} <= set(paths)
        specs = [(path, chunked, {}) for path in paths for chunked in (False, True)]
        started = time.monotonic()
        conns = await _stall_all(srv, specs)
        # Meanwhile the server serves everyone else.
        async with http.post(srv.base_url + "/render",
                             data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            assert r.status == 200, await r.text()
        await _assert_timed_out(conns, started, deadline)


async def test_body_deadline_is_a_serve_option():
    from streamer.cli import build_parser

    args = build_parser().parse_args(["serve", "--body-timeout", "5", "--max-request-mpx", "8",
                                      "--allowed-host", "a.example", "--allowed-host", "b.example"])
    assert args.body_timeout == 5.0 and args.max_request_mpx == 8.0
    assert args.allowed_hosts == ["a.example", "b.example"]


# ---------------------------------------------------------------- 9. upload limit, every byte

def _part(headers: str, payload: bytes) -> bytes:
    return f"--{BOUNDARY}\r\n{headers}\r\n\r\n".encode() + payload + b"\r\n"


def _body(*parts: bytes) -> bytes:
    return b"".join(parts) + f"--{BOUNDARY}--\r\n".encode()


def _oversize_bodies(photo: bytes, filler: int) -> dict[str, bytes]:
    junk = b"x" * filler
    named = 'Content-Disposition: form-data; name="source_image"; filename="a.jpg"'
    nested_body = _body(_part('Content-Disposition: form-data; name="inner"', junk)).replace(
        BOUNDARY.encode(), b"innerboundary")
    return {
        "named file part": _body(_part(named, photo + junk), _part('Content-Disposition: form-data; name="emotion"', b"happy")),
        "unnamed part": _body(_part("Content-Disposition: form-data", junk), _part(named, photo)),
        "part without headers": _body(_part("Content-Type: application/octet-stream", junk), _part(named, photo)),
        "unknown field": _body(_part('Content-Disposition: form-data; name="junk"', junk[:60000]) * 40,
                               _part(named, photo)),
        "nested multipart": _body(_part("Content-Type: multipart/mixed; boundary=innerboundary", nested_body),
                                  _part(named, photo)),
    }


async def _chunks(data: bytes, size: int = 32 * 1024):
    for i in range(0, len(data), size):
        yield data[i:i + size]


@pytest.mark.parametrize("path", BODY_ROUTES + ("/sessions/{session_id}/speech",))
async def test_upload_limit_counts_every_byte(start_server, grace_hopper_jpeg, path):
    srv = await start_server(max_upload_mb=0.5)
    filler = 2 * 1024 * 1024  # four times the limit
    ctype = f"multipart/form-data; boundary={BOUNDARY}"
    async with aiohttp.ClientSession() as http:
        if "{session_id}" in path:
            c = await SessionClient.create(http, srv.base_url, grace_hopper_jpeg)
            path = path.replace("{session_id}", c.session_id)
        for name, body in _oversize_bodies(grace_hopper_jpeg, filler).items():
            for framing in ("content-length", "chunked", "chunked+gzip"):
                headers = {"Content-Type": ctype}
                data: object = body
                if framing != "content-length":
                    data = _chunks(gzip.compress(body) if framing.endswith("gzip") else body)
                    if framing.endswith("gzip"):
                        headers["Content-Encoding"] = "gzip"
                try:
                    async with http.post(srv.base_url + path, data=data, headers=headers,
                                         params={"emotion": "happy"}) as r:
                        status, text = r.status, await r.text()
                except (aiohttp.ClientOSError, aiohttp.ServerDisconnectedError):
                    continue  # refused mid-upload with the connection closed: also not accepted
                assert status in (400, 413), f"{path} {name} {framing}: {status} {text[:200]}"
                assert json.loads(text)["error"]["code"] in ("file_too_large", "field_too_large",
                                                             "bad_request", "payload_too_large")
        # The server keeps serving, and a body within the limit still works.
        async with http.post(srv.base_url + "/render",
                             data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            assert r.status == 200, await r.text()


# ---------------------------------------------------------------- 3. DNS rebinding

def _route_paths(sid: str) -> list[tuple[str, str]]:
    from streamer.routes import ROUTES

    fill = {"{session_id}": sid, "{filename}": "0" * 32 + ".png", "{name}": "index.html",
            "{folder}": "js"}
    out = []
    for r in ROUTES:
        path = r.path
        for k, v in fill.items():
            path = path.replace(k, v)
        out.append((r.method, path))
    return out


@pytest.mark.parametrize("keys", [False, True], ids=["keyless", "keyed"])
async def test_foreign_host_is_refused_on_every_route(start_server, grace_hopper_jpeg, keys):
    access = AccessConfig(api_keys=[KEY_A]) if keys else AccessConfig()
    srv = await start_server(access=access, allowed_hosts=["avatar.example.com"])
    auth = _auth(KEY_A) if keys else {}
    async with aiohttp.ClientSession() as http:
        async with http.post(srv.base_url + "/sessions", headers=auth, data=portrait_form(grace_hopper_jpeg)) as r:
            assert r.status == 201
            sid = (await r.json())["session_id"]
        for host in ("evil.example", f"evil.example:{srv.port}", "rebind.attacker.test.", "localhost.evil.example"):
            for method, path in _route_paths(sid):
                for origin in (None, f"http://{host}"):
                    headers = {"Host": host, **auth}
                    if origin:
                        headers["Origin"] = origin
                    async with http.request(method, srv.base_url + path, headers=headers) as r:
                        assert r.status == 421, f"{method} {path} Host {host}: {r.status}"
                        assert (await r.json())["error"]["code"] == "host_not_allowed"
            with pytest.raises(aiohttp.WSServerHandshakeError) as err:
                await http.ws_connect(f"{srv.ws_base}/sessions/{sid}/ws", headers={"Host": host, **auth})
            assert err.value.status == 421
        for host in ("localhost", f"localhost:{srv.port}", f"127.0.0.1:{srv.port}", "[::1]:8001",
                     "app.localhost", "avatar.example.com", "AVATAR.example.com:443", "10.1.2.3"):
            async with http.get(srv.base_url + "/sessions", headers={"Host": host, **auth}) as r:
                assert r.status == 200, f"Host {host}: {r.status}"
            ws = await http.ws_connect(f"{srv.ws_base}/sessions/{sid}/ws", headers={"Host": host, **auth})
            await ws.close()


async def test_allowed_hosts_from_env_and_star(start_server):
    from streamer.access.cli import allowed_hosts_from
    from streamer.access.hosts import HostPolicy

    assert allowed_hosts_from(["a.example"], {"LPA_ALLOWED_HOSTS": "b.example, a.example,"}) == ["a.example", "b.example"]
    with pytest.raises(SystemExit):
        allowed_hosts_from(["http://a.example/"], {})
    assert HostPolicy("127.0.0.1", ["*"]).allows("anything.example")
    assert HostPolicy("avatar.lan", []).allows("avatar.lan:8001")
    assert not HostPolicy("0.0.0.0", []).allows("evil.example")
    assert HostPolicy("127.0.0.1", []).allows(None)  # no Host at all: not a browser


# ---------------------------------------------------------------- 12. JSON below the app, 416, q-values

MALFORMED = {
    "bad method": b"G@T / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    "bad version": b"GET / HTTP/9.Z\r\nHost: localhost\r\n\r\n",
    "bad content-length": b"POST /render HTTP/1.1\r\nHost: localhost\r\nContent-Length: abc\r\n\r\n",
    "length and chunked": (b"POST /render HTTP/1.1\r\nHost: localhost\r\nContent-Length: 5\r\n"
                           b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
    "bad chunk size": (b"POST /render HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n"
                       b"Content-Type: multipart/form-data; boundary=x\r\n\r\nzz\r\nabc\r\n"),
    "header without colon": b"GET /health HTTP/1.1\r\nHost: localhost\r\nNoColonHere\r\n\r\n",
    "huge header": b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n",
    "huge request line": b"GET /" + b"a" * 20000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


async def test_protocol_errors_are_json(server):
    for name, data in MALFORMED.items():
        reader, writer = await _raw(server.port, data)
        try:
            status, headers, body, _ = await _read_response(reader)
        finally:
            writer.close()
        assert 400 <= status < 500, f"{name}: {status}"
        assert headers.get("content-type", "").startswith("application/json"), f"{name}: {headers} {body[:80]!r}"
        err = json.loads(body)["error"]
        assert set(err) >= {"code", "message"} and err["code"], name
    async with aiohttp.ClientSession() as http:  # and the server keeps serving
        async with http.get(server.base_url + "/health") as r:
            assert r.status == 200


async def test_unsatisfiable_ranges_are_json(server, grace_hopper_jpeg):
    async with aiohttp.ClientSession() as http:
        async with http.post(server.base_url + "/render", data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            name = (await r.json())["filename"]
        for path in ("/output/" + name, "/", "/js/app.js", "/index.html"):
            async with http.get(server.base_url + path, headers={"Range": "bytes=0-9"}) as r:
                assert r.status == 206, path
            for bad in ("bytes=99999999-", "bytes=5-2", "lines=1-2", "bytes=x-y"):
                async with http.get(server.base_url + path, headers={"Range": bad}) as r:
                    assert r.status == 416, f"{path} {bad}: {r.status}"
                    assert r.headers["Content-Type"].startswith("application/json")
                    assert (await r.json())["error"]["code"] == "range_not_satisfiable"
                    assert r.headers["Content-Range"].startswith("bytes */")


RENDER_ACCEPT = [
    ("image/png;q=0", "application/json"),
    ("image/png;q=0, image/webp", "image/webp"),
    ("image/webp;q=0.5, image/png;q=0.9", "image/png"),
    ("image/jpeg;q=0.2, application/json;q=0.8", "application/json"),
    ("*/*;q=0.1, image/jpeg", "image/jpeg"),
    ("image/*;q=0, application/json;q=0.1", "application/json"),
    ("image/*, image/png;q=0", "image/jpeg"),
    ("image/png; q=1.0 , application/json;q=0.5", "image/png"),
    ("text/html", "application/json"),
    ("", "application/json"),
]


async def test_render_honours_accept_q_values(server, grace_hopper_jpeg):
    async with aiohttp.ClientSession() as http:
        for accept, want in RENDER_ACCEPT:
            async with http.post(server.base_url + "/render", headers={"Accept": accept},
                                 data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
                assert r.status == 200, (accept, await r.text())
                assert r.headers["Content-Type"].split(";")[0] == want, accept
        for accept in ("application/json;q=0, image/*;q=0", "application/json;q=0, image/png;q=0"):
            async with http.post(server.base_url + "/render", headers={"Accept": accept},
                                 data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
                assert r.status == 406 and (await r.json())["error"]["code"] == "not_acceptable"


async def test_outputs_honour_accept_q_values(server, grace_hopper_jpeg):
    async with aiohttp.ClientSession() as http:
        async with http.post(server.base_url + "/render", data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            name = (await r.json())["filename"]
        for accept, status in (("image/png;q=0", 406), ("image/*;q=0", 406), ("*/*;q=0", 406),
                               ("image/*;q=0, image/png", 200), ("image/png", 200), ("*/*", 200),
                               ("application/json", 200)):
            async with http.get(server.base_url + "/output/" + name, headers={"Accept": accept}) as r:
                assert r.status == status, accept
                if status == 406:
                    assert (await r.json())["error"]["code"] == "not_acceptable"


def test_negotiation_rules():
    from streamer.http.negotiation import acceptable_q, best_of, excluded

    offers = ["application/json", "image/png"]
    assert best_of(None, offers) == "application/json"
    assert best_of("image/png;q=0.001", offers) == "image/png"
    assert best_of("image/png;q=0", offers) is None
    assert best_of("*/*;q=0.5, image/png;q=0.4", offers) == "application/json"
    assert acceptable_q("image/*;q=0.3, image/png;q=0.7", "image/png") == 0.7
    assert acceptable_q("image/png;q=bogus", "image/png") == 1.0
    assert excluded("*/*;q=0", "image/png") and not excluded("text/html", "image/png")


# ---------------------------------------------------------------- 11. outputs are private

async def test_outputs_are_private(start_server, grace_hopper_jpeg, tmp_path):
    out = tmp_path / "fresh" / "outputs"
    srv = await start_server(output_dir=out)
    assert stat.S_IMODE(out.stat().st_mode) == 0o700
    async with aiohttp.ClientSession() as http:
        async with http.post(srv.base_url + "/render/batch",
                             data=portrait_form(grace_hopper_jpeg, emotions="happy,sad")) as r:
            names = [x["filename"] for x in (await r.json())["results"]]
        async with http.post(srv.base_url + "/render", data=portrait_form(grace_hopper_jpeg, emotion="happy")) as r:
            names.append((await r.json())["filename"])
    for n in names:
        assert stat.S_IMODE((out / n).stat().st_mode) == 0o600, n
    # An existing folder of ours that others could read is made private.
    loose = tmp_path / "loose"
    loose.mkdir(mode=0o755)
    os.chmod(loose, 0o755)
    await start_server(output_dir=loose)
    assert stat.S_IMODE(loose.stat().st_mode) == 0o700


def test_output_dir_owned_by_someone_else_is_refused(tmp_path):
    from streamer.http.outputs import OutputDirError, OutputStore

    if os.geteuid() != 0:
        with pytest.raises(OutputDirError, match="another user"):
            OutputStore(Path("/tmp"), 60.0)  # root's (and sticky): a real other owner
    mine = tmp_path / "mine"
    mine.mkdir()
    with pytest.raises(OutputDirError, match="another user"):
        OutputStore(mine, 60.0, uid=os.geteuid() + 1)  # the same check, posing as another uid
    link = tmp_path / "link"
    link.symlink_to(mine)
    with pytest.raises(OutputDirError, match="symlink"):
        OutputStore(link, 60.0)


def test_serve_refuses_a_foreign_output_dir_at_startup(capsys):
    from streamer.cli import main

    if os.geteuid() == 0:
        pytest.skip("root owns /tmp: covered by the uid-injection test")
    with pytest.raises(SystemExit) as exc:
        main(["serve", "--port", "0", "--output-dir", "/tmp"])
    assert "belongs to another user" in str(exc.value)


# ---------------------------------------------------------------- 2. cost budget and priority

@pytest.mark.parametrize("path,fields", [("/render", {"emotion": "happy"}),
                                         ("/render/batch", {"emotions": "happy,sad,angry"})])
async def test_cost_budget_on_every_rendering_route(start_server, grace_hopper_jpeg, path, fields):
    # grace_hopper is 512x600: a full frame is 0.29 Mpx, a crop frame 0.25.
    srv = await start_server(max_request_pixels=200_000)
    async with aiohttp.ClientSession() as http:
        for mode in ("full", "crop"):
            async with http.post(srv.base_url + path, data=portrait_form(grace_hopper_jpeg, mode=mode, **fields)) as r:
                assert r.status == 413, await r.text()
                err = (await r.json())["error"]
                assert err["code"] == "request_too_costly" and "Mpx" in err["message"]
    assert srv.state.cache.misses == 0  # refused before any engine work
    w, h = Image.open(io.BytesIO(grace_hopper_jpeg)).size
    srv2 = await start_server(max_request_pixels=3 * w * h)  # exactly three full frames
    async with aiohttp.ClientSession() as http:
        for emotions, status in (("happy,sad,angry", 200), ("happy,sad,angry,fearful", 413)):
            async with http.post(srv2.base_url + "/render/batch",
                                 data=portrait_form(grace_hopper_jpeg, mode="full", emotions=emotions)) as r:
                assert r.status == status, await r.text()


async def test_session_ticks_jump_ahead_of_queued_rest_work(mesh_engine):
    from streamer.runtime.engine_worker import EngineWorker

    worker = EngineWorker(mesh_engine, max_pending=16)
    gate = threading.Event()
    order: list[str] = []
    try:
        blocker = asyncio.ensure_future(worker.call(gate.wait, 30.0))
        await wait_until(lambda: worker.stats.pending == 1)
        rest = [asyncio.ensure_future(worker.call(order.append, f"rest{i}")) for i in range(4)]
        await wait_until(lambda: worker.stats.pending == 5)
        tick = asyncio.ensure_future(worker.call(order.append, "tick", priority=True))
        await wait_until(lambda: worker.stats.pending == 6)
        gate.set()
        await asyncio.gather(blocker, tick, *rest)
        assert order == ["tick", "rest0", "rest1", "rest2", "rest3"]
        # A caller that gives up while queued is skipped, and shutdown fails what is left.
        gate.clear()
        blocker = asyncio.ensure_future(worker.call(gate.wait, 30.0))
        await wait_until(lambda: worker.stats.pending == 1)
        dropped = asyncio.ensure_future(worker.call(order.append, "dropped"))
        await wait_until(lambda: worker.stats.pending == 2)
        dropped.cancel()
        with pytest.raises(asyncio.CancelledError):
            await dropped
        await asyncio.sleep(0)  # the cancellation reaches the queued job
        gate.set()
        await blocker
        assert await worker.call(lambda: "after") == "after"
        assert "dropped" not in order
    finally:
        gate.set()
        worker.shutdown()

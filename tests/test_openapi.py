"""GET /openapi.json stays true: every route is documented and every documented operation
exists; real answers of the real server match the documented statuses and schemas."""
from __future__ import annotations

import json
from typing import Any

import aiohttp
import jsonschema_rs
import pytest

from streamer.http.openapi import OPENAPI_PATH

_METHODS = ("get", "put", "post", "delete", "patch", "options", "head", "trace")


def _documented(doc: dict) -> set[tuple[str, str]]:
    return {(m.upper(), path) for path, item in doc["paths"].items() for m in item if m in _METHODS}


def _registered(app: Any) -> set[tuple[str, str]]:
    out = set()
    for route in app.router.routes():
        if route.resource is None:
            continue
        out.add((route.method, route.resource.canonical))
    return out


def _response_spec(doc: dict, method: str, template: str, status: int) -> dict:
    op = doc["paths"][template][method.lower()]
    spec = op["responses"].get(str(status))
    assert spec is not None, f"{method} {template} answered {status}, not documented: " \
                             f"{sorted(op['responses'])}"
    return spec


def check(doc: dict, method: str, template: str, status: int, headers: Any, body: bytes) -> Any:
    """Assert one real answer matches the document; returns the parsed JSON (if any)."""
    spec = _response_spec(doc, method, template, status)
    for name in spec.get("headers", {}):
        assert name in headers, f"{method} {template} {status}: missing header {name}"
    content = spec.get("content")
    if not content:
        return None
    ctype = headers.get("Content-Type", "").split(";")[0].strip()
    assert ctype in content, f"{method} {template} {status}: {ctype!r} not in {sorted(content)}"
    if ctype != "application/json":
        return None
    data = json.loads(body)
    schema = {**content[ctype]["schema"], "components": doc["components"]}
    jsonschema_rs.validator_for(schema).validate(data)  # raises with the failing path
    return data


async def _fetch_doc(http: aiohttp.ClientSession, base: str) -> dict:
    async with http.get(base + OPENAPI_PATH) as r:
        assert r.status == 200
        assert r.content_type == "application/json"
        return await r.json()


async def test_every_route_is_documented_and_vice_versa(server) -> None:
    async with aiohttp.ClientSession() as http:
        doc = await _fetch_doc(http, server.base_url)
    assert doc["openapi"].startswith("3.1")
    registered = _registered(server.app)
    # aiohttp adds HEAD to every GET route by itself; the document lists the GETs.
    heads = {(m, p) for m, p in registered if m == "HEAD"}
    assert all(("GET", p) in registered for _, p in heads)
    routes = registered - heads
    documented = _documented(doc)
    assert routes - documented == set(), "routes missing from /openapi.json"
    assert documented - routes == set(), "documented operations the server does not have"
    # Every path parameter a template names is declared, with a schema.
    for path, item in doc["paths"].items():
        for method in (m for m in item if m in _METHODS):
            params = item.get("parameters", []) + item[method].get("parameters", [])
            declared = {p["name"] for p in params if p["in"] == "path"}
            named = {seg[1:-1] for seg in path.split("/") if seg.startswith("{")}
            assert declared == named, (method, path)
            responses = item[method]["responses"]
            assert "500" in responses, (method, path)
            for status, spec in responses.items():
                if int(status) >= 400:
                    assert spec["content"]["application/json"]["schema"] == \
                        {"$ref": "#/components/schemas/Error"}, (method, path, status)
                if status in ("429", "503"):
                    assert "Retry-After" in spec["headers"], (method, path, status)
    assert doc["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"


def test_checker_rejects_a_wrong_shape() -> None:
    """The checker used below must be able to fail."""
    from streamer.config import ServerConfig
    from streamer.http.openapi import build_document

    doc = build_document(ServerConfig())
    hdrs = {"Content-Type": "application/json"}
    with pytest.raises(jsonschema_rs.ValidationError):
        check(doc, "GET", "/health", 200, hdrs, b'{"status": "healthy"}')
    with pytest.raises(AssertionError):
        check(doc, "GET", "/health", 418, hdrs, b"{}")
    with pytest.raises(jsonschema_rs.ValidationError):
        check(doc, "DELETE", "/sessions/{session_id}", 404, hdrs, b'{"error": "nope"}')


async def test_real_answers_match_the_document(server, grace_hopper_jpeg: bytes) -> None:
    base = server.base_url
    async with aiohttp.ClientSession() as http:
        doc = await _fetch_doc(http, base)

        async def call(method: str, template: str, path: str, **kw: Any) -> tuple[int, Any]:
            async with http.request(method, base + path, **kw) as r:
                body = await r.read()
                return r.status, check(doc, method, template, r.status, r.headers, body)

        assert (await call("GET", "/health", "/health"))[0] == 200
        assert (await call("GET", "/metrics", "/metrics"))[0] == 200
        assert (await call("GET", "/samples", "/samples"))[0] == 200
        assert (await call("GET", OPENAPI_PATH, OPENAPI_PATH))[0] == 200

        form = aiohttp.FormData()
        form.add_field("source_image", grace_hopper_jpeg, filename="g.jpg", content_type="image/jpeg")
        form.add_field("emotion", "happy")
        status, result = await call("POST", "/render", "/render", data=form)
        assert status == 200
        name = result["filename"]
        assert (await call("GET", "/output/{filename}", f"/output/{name}"))[0] == 200
        assert (await call("DELETE", "/output/{filename}", f"/output/{name}"))[0] == 200
        assert (await call("DELETE", "/output/{filename}", f"/output/{name}"))[0] == 404

        form = aiohttp.FormData()
        form.add_field("source_image", grace_hopper_jpeg, filename="g.jpg", content_type="image/jpeg")
        for e in ("sad", "angry"):
            form.add_field("emotions", e)
        status, batch = await call("POST", "/render/batch", "/render/batch", data=form)
        assert status == 200 and len(batch["results"]) == 2

        bad = aiohttp.FormData()
        bad.add_field("source_image", grace_hopper_jpeg, filename="g.jpg", content_type="image/jpeg")
        bad.add_field("emotion", "bored")
        assert (await call("POST", "/render", "/render", data=bad))[0] == 400
        assert (await call("POST", "/render", "/render", data=b"{}",
                           headers={"Content-Type": "application/json"}))[0] == 415
        junk = aiohttp.FormData()
        junk.add_field("source_image", b"not an image", filename="x.jpg")
        junk.add_field("emotion", "happy")
        assert (await call("POST", "/render", "/render", data=junk))[0] == 422

        form = aiohttp.FormData()
        form.add_field("source_image", grace_hopper_jpeg, filename="g.jpg", content_type="image/jpeg")
        form.add_field("fps", "10")
        form.add_field("size", "256")
        status, created = await call("POST", "/sessions", "/sessions", data=form)
        assert status == 201
        sid = created["session_id"]
        assert (await call("GET", "/sessions", "/sessions"))[0] == 200
        assert (await call("GET", "/sessions/{session_id}", f"/sessions/{sid}"))[0] == 200
        # A plain GET (no upgrade) on the socket route is a documented 400.
        assert (await call("GET", "/sessions/{session_id}/ws", f"/sessions/{sid}/ws"))[0] == 400
        assert (await call("DELETE", "/sessions/{session_id}", f"/sessions/{sid}"))[0] == 200
        assert (await call("GET", "/sessions/{session_id}", f"/sessions/{sid}"))[0] == 404
        assert (await call("GET", "/sessions/{session_id}/ws", f"/sessions/{sid}/ws"))[0] == 404

        assert (await call("GET", "/", "/"))[0] == 200
        assert (await call("GET", "/{name}", "/favicon.svg"))[0] == 200
        assert (await call("GET", "/{folder}/{name}", "/js/app.js"))[0] == 200
        assert (await call("GET", "/{folder}/{name}", "/js/nope.js"))[0] == 404
        assert (await call("GET", "/samples/{name}", "/samples/grace_hopper"))[0] == 200
        assert (await call("GET", "/samples/{name}", "/samples/nobody"))[0] == 404

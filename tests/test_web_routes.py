"""The demo page's routes on the real server: content types, cache headers, samples, bad paths."""
from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest

from streamer.http.web_routes import WebDirMissingError, find_web_dir

WEB = Path(__file__).resolve().parent.parent / "web"


@pytest.fixture
async def http():
    async with aiohttp.ClientSession() as s:
        yield s


@pytest.mark.parametrize("path, ctype", [
    ("/", "text/html"),
    ("/index.html", "text/html"),
    ("/js/app.js", "text/javascript"),
    ("/js/avatar-client.js", "text/javascript"),
    ("/css/app.css", "text/css"),
    ("/favicon.svg", "image/svg+xml"),
])
async def test_page_assets_have_types_and_revalidate(server, http, path, ctype):
    async with http.get(server.base_url + path) as r:
        assert r.status == 200
        assert r.content_type == ctype
        assert r.headers["Cache-Control"] == "no-cache"
        assert r.headers["X-Content-Type-Options"] == "nosniff"
        etag = r.headers.get("ETag")
        body = await r.read()
    assert body
    # A conditional request costs nothing after the first load.
    assert etag
    async with http.get(server.base_url + path, headers={"If-None-Match": etag}) as r:
        assert r.status == 304


async def test_every_module_the_page_imports_is_served(server, http):
    """Catches a typo'd import path: each relative import must resolve on the server."""
    pending, seen = ["/js/app.js"], set()
    while pending:
        path = pending.pop()
        seen.add(path)
        async with http.get(server.base_url + path) as r:
            assert r.status == 200, path
            text = await r.text()
        for rel in re.findall(r'from\s+"\./([\w.-]+\.js)"', text):
            if f"/js/{rel}" not in seen:
                pending.append(f"/js/{rel}")
    assert {"/js/app.js", "/js/avatar-client.js", "/js/stage.js"} <= seen


async def test_page_has_no_inline_script_or_style(http, server):
    """A strict Content-Security-Policy (script-src 'self') must work."""
    async with http.get(server.base_url + "/") as r:
        html = await r.text()
    assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", html)
    assert "<style" not in html and " style=" not in html and "onclick=" not in html.lower()
    for js in WEB.glob("js/*.js"):
        src = js.read_text()
        assert "eval(" not in src and "new Function" not in src, js.name
        assert "innerHTML" not in src, js.name  # text only: no markup injection from server strings


@pytest.mark.parametrize("name", ["grace_hopper", "astronaut"])
async def test_samples_are_jpeg_portraits(server, http, name):
    async with http.get(f"{server.base_url}/samples/{name}") as r:
        assert r.status == 200
        assert r.content_type == "image/jpeg"
        assert "max-age" in r.headers["Cache-Control"]
        data = await r.read()
    assert data[:2] == b"\xff\xd8" and len(data) > 10_000


async def test_sample_list_names_what_is_installed(server, http):
    async with http.get(f"{server.base_url}/samples") as r:
        assert r.status == 200
        assert await r.json() == {"samples": ["grace_hopper", "astronaut"]}


@pytest.mark.parametrize("path", [
    "/samples/chelsea",  # a test-only sample, not offered by the page
    "/samples/..%2Fpyproject.toml",
    "/js/nope.js",
    "/js/..%2F..%2Fpyproject.toml",
    "/js/.hidden.js",
    "/css/app.js",
    "/img/",
    "/README.md",
])
async def test_unknown_or_unsafe_paths_are_json_404(server, http, path):
    async with http.get(server.base_url + path) as r:
        assert r.status == 404
        body = await r.json()
    assert body["error"]["code"] == "not_found"


async def test_non_get_on_page_is_refused_and_server_keeps_serving(server, http):
    async with http.post(server.base_url + "/", data=b"x") as r:
        assert r.status == 405
    async with http.get(server.base_url + "/") as r:
        assert r.status == 200


def test_missing_web_dir_fails_clearly(tmp_path):
    with pytest.raises(WebDirMissingError, match="index.html"):
        find_web_dir(tmp_path)
    assert find_web_dir(WEB) == WEB

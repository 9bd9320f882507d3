"""The demo page: serves web/ at /, the bundled sample portraits at /samples/{name} (list: /samples).

The page is plain files (no build step). Only known asset folders and extensions are
served, so nothing else in the repository can leak through these routes.
"""
from __future__ import annotations

import asyncio
import logging
import re
from pathlib import Path

from aiohttp import web

from streamer.app_state import AppState
from streamer.errors import ApiError
from streamer.http.ranges import check_range
from streamer.samples import SAMPLE_NAMES, available_samples, sample_portrait_bytes
from streamer.web_assets import web_root
from streamer.strict_json import json_response

log = logging.getLogger("streamer")

# web/ as installed: the package streamer_web, from the wheel or the checkout (setup.py maps it).
WEB_DIR: Path = web_root()

CONTENT_TYPES: dict[str, str] = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
    ".webmanifest": "application/manifest+json",
}
ASSET_DIRS: tuple[str, ...] = ("js", "css", "img")
# One path segment of plain characters: no "..", no slashes, no hidden files.
_SAFE_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9_.-]{0,99}$")
# Revalidate every time (ETag / Last-Modified make it a cheap 304): after an upgrade the
# browser never mixes an old module with a new one.
CACHE_ASSETS = "no-cache"
CACHE_SAMPLES = "public, max-age=86400"
# The page has no inline script or style and no eval, so it runs under this strict policy
# (tests/test_web_page.py checks it in Chromium; a violation fails the test).
PAGE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data:; "
            "media-src 'self' blob:; connect-src 'self'; object-src 'none'; base-uri 'none'; "
            "frame-ancestors 'none'; form-action 'self'")


class WebDirMissingError(RuntimeError):
    pass


def find_web_dir(web_dir: Path = WEB_DIR) -> Path:
    if not (web_dir / "index.html").is_file():
        raise WebDirMissingError(
            f"demo page not found: expected {web_dir / 'index.html'}. The page ships in the "
            "package as streamer_web; reinstall liveportrait-avatar (pip install . or the wheel).")
    return web_dir


def _file_response(request: web.Request, path: Path) -> web.StreamResponse:
    ctype = CONTENT_TYPES.get(path.suffix.lower())
    if ctype is None or not path.is_file():
        raise ApiError(404, "not_found", "no such file")
    check_range(request, path)  # a 416 as JSON, not FileResponse's empty one
    headers = {"Content-Type": ctype, "Cache-Control": CACHE_ASSETS,
               "X-Content-Type-Options": "nosniff"}
    if path.suffix.lower() == ".html":
        headers["Content-Security-Policy"] = PAGE_CSP
    # FileResponse answers conditional requests (ETag, If-Modified-Since) with 304.
    return web.FileResponse(path, headers=headers)


def _sniff_image_type(data: bytes) -> str:
    if data.startswith(b"\xff\xd8"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return "application/octet-stream"


def setup_web(app: web.Application, state: AppState) -> None:
    """Add the / route, the page's static assets and /samples/{name}."""
    root = find_web_dir()

    async def index(request: web.Request) -> web.StreamResponse:
        return _file_response(request, root / "index.html")

    async def top_file(request: web.Request) -> web.StreamResponse:
        return _file_response(request, root / request.match_info["name"])

    async def asset(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if not _SAFE_NAME.match(name):
            raise ApiError(404, "not_found", "no such file")
        return _file_response(request, root / request.match_info["folder"] / name)

    async def sample(request: web.Request) -> web.StreamResponse:
        name = request.match_info["name"]
        if name not in SAMPLE_NAMES:
            raise ApiError(404, "not_found", f"unknown sample {name!r}; known: {', '.join(SAMPLE_NAMES)}")
        cached = state.samples.bytes_by_name
        data = cached.get(name)
        if data is None:
            try:
                # Reading/encoding the photo is file I/O and image work: keep it off the loop.
                data = await asyncio.get_running_loop().run_in_executor(
                    None, sample_portrait_bytes, name)
            except (OSError, ImportError, ValueError, RuntimeError) as exc:
                # exc may name a file path: log it, tell the client only what is missing.
                log.warning("sample %s unavailable: %r", name, exc)
                raise ApiError(404, "not_found", f"sample {name!r} is not installed here") from None
            cached[name] = data
        return web.Response(body=data, headers={
            "Content-Type": _sniff_image_type(data),
            "Cache-Control": CACHE_SAMPLES,
            "X-Content-Type-Options": "nosniff",
        })

    app.router.add_get("/", index)
    # Explicit top-level names only: a catch-all here would shadow the API's routes.
    app.router.add_get(r"/{name:index\.html|favicon\.svg|favicon\.ico|site\.webmanifest}", top_file)
    app.router.add_get(r"/{folder:js|css|img}/{name}", asset)
    async def sample_list(request: web.Request) -> web.StreamResponse:
        names = state.samples.names
        if names is None:
            # Loading a sample may import scikit-image: seconds, so off the loop, once.
            found = await asyncio.get_running_loop().run_in_executor(None, available_samples)
            names = state.samples.names = [n for n in SAMPLE_NAMES if n in found]
        return json_response({"samples": names}, headers={"Cache-Control": CACHE_ASSETS})

    app.router.add_get("/samples", sample_list)
    app.router.add_get("/samples/{name}", sample)

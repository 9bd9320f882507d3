"""The route table: every route the server answers, with who may call it and what it costs.

Read by the access layer (access/control.py: which routes need no key, which a session
token opens, which the rate limit meters) and by the OpenAPI document (http/openapi.py:
security and 401/429 responses), so the two never disagree. ``create_app`` checks that
every registered route is listed here. A path is aiohttp's canonical template, which is
also the OpenAPI path. HEAD is answered for every GET route.
"""
from __future__ import annotations

from dataclasses import dataclass

from aiohttp import web


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    open: bool = False  # never needs a key (nothing secret; the page needs a key to act)
    metered: bool = False  # costs engine work: the per-key token bucket meters it
    token: bool = False  # a session token may call it, on its own session only
    websocket: bool = False  # a GET that upgrades (no HEAD for tokens)


METRICS_PATH = "/metrics"  # open unless --metrics-auth: see access/control.py

ROUTES: tuple[Route, ...] = (
    Route("GET", "/health", open=True),
    Route("POST", "/render", metered=True),
    Route("POST", "/render/batch", metered=True),
    Route("POST", "/render/video", metered=True),
    Route("GET", "/output/{filename}"),
    Route("DELETE", "/output/{filename}"),
    Route("GET", METRICS_PATH),
    Route("POST", "/sessions", metered=True),
    Route("GET", "/sessions"),
    Route("GET", "/sessions/{session_id}", token=True),
    Route("DELETE", "/sessions/{session_id}", token=True),
    Route("GET", "/sessions/{session_id}/ws", token=True, websocket=True),
    Route("POST", "/sessions/{session_id}/speech", token=True),
    Route("POST", "/sessions/{session_id}/say", metered=True, token=True),  # runs espeak-ng
    Route("GET", "/", open=True),
    Route("GET", "/{name}", open=True),  # index.html, favicons, the web manifest
    Route("GET", "/{folder}/{name}", open=True),  # the page's js/, css/, img/
    Route("GET", "/samples", open=True),
    Route("GET", "/samples/{name}", open=True),
    Route("GET", "/openapi.json", open=True),
)

OPEN_PATHS: frozenset[str] = frozenset(r.path for r in ROUTES if r.open)
METERED: frozenset[tuple[str, str]] = frozenset((r.method, r.path) for r in ROUTES if r.metered)
# A token's plain GETs take HEAD too (aiohttp answers it for every GET route).
TOKEN: frozenset[tuple[str, str]] = frozenset(
    {(r.method, r.path) for r in ROUTES if r.token}
    | {("HEAD", r.path) for r in ROUTES if r.token and r.method == "GET" and not r.websocket})


def route_template(request: web.Request) -> str:
    """The matched route's template, e.g. /output/{filename}; "unmatched" for none.
    Never the raw path: it names metrics labels and access rules."""
    resource = request.match_info.route.resource
    return "unmatched" if resource is None else resource.canonical


def check_routes(app: web.Application) -> None:
    """Fail at startup when a registered route is missing from ROUTES (or the reverse)."""
    listed = {(r.method, r.path) for r in ROUTES}
    registered = {(r.method, r.resource.canonical) for r in app.router.routes()
                  if r.method != "HEAD" and r.resource is not None}
    if listed != registered:
        raise RuntimeError(f"streamer/routes.py is out of date: not listed {sorted(registered - listed)}, "
                           f"not registered {sorted(listed - registered)}")

"""Cross-origin rules and the security headers every response carries.

By default no other origin may call the API: no CORS headers, preflights get 403, and a
state-changing request or WebSocket upgrade carrying a foreign `Origin` is refused with 403
before any handler runs (a web page elsewhere cannot drive a server on localhost). Origins
listed with `--cors-origin` get the usual echo of their origin plus `Vary: Origin`.
Requests without `Origin` (curl, Node, Python) and same-origin requests are never affected.
"""
from __future__ import annotations

from typing import Awaitable, Callable
from urllib.parse import urlsplit

from aiohttp import web

from streamer.errors import json_error

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOW_METHODS = "GET, POST, DELETE, OPTIONS"
ALLOW_HEADERS = "Authorization, Content-Type, Accept"
EXPOSE_HEADERS = "Retry-After, WWW-Authenticate, X-Latency-Ms, X-Emotion, X-Intensity"
PREFLIGHT_MAX_AGE_S = 600
SECURITY_HEADERS: dict[str, str] = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


def normalise_origin(origin: str) -> str:
    return origin.strip().rstrip("/").lower()


def is_same_origin(request: web.Request, origin: str) -> bool:
    # Host only, not scheme: behind a TLS-terminating proxy the server itself sees http.
    try:
        return urlsplit(origin).netloc.lower() == request.host.lower()
    except ValueError:
        return False


class OriginPolicy:
    def __init__(self, origins: list[str]) -> None:
        self.any = "*" in origins
        self.origins = frozenset(normalise_origin(o) for o in origins if o != "*")
        self.configured = bool(origins)

    def allows(self, origin: str) -> bool:
        return self.any or normalise_origin(origin) in self.origins

    def verdict(self, request: web.Request) -> tuple[bool, bool]:
        """(cross-origin, allowed) for this request's Origin header."""
        origin = request.headers.get("Origin")
        if origin is None or is_same_origin(request, origin):
            return False, True
        return True, self.allows(origin)


def _is_ws_upgrade(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def cors_middleware(origins: list[str]) -> Callable[[web.Request, Handler], Awaitable[web.StreamResponse]]:
    policy = OriginPolicy(origins)

    def _cors_headers(response: web.StreamResponse, origin: str) -> None:
        response.headers["Access-Control-Allow-Origin"] = origin
        response.headers["Access-Control-Expose-Headers"] = EXPOSE_HEADERS

    @web.middleware
    async def cors_and_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin", "")
        cross, allowed = policy.verdict(request)
        response: web.StreamResponse
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            if cross and allowed:
                response = web.Response(status=204, headers={
                    "Access-Control-Allow-Methods": ALLOW_METHODS,
                    "Access-Control-Allow-Headers": ALLOW_HEADERS,
                    "Access-Control-Max-Age": str(PREFLIGHT_MAX_AGE_S)})
                _cors_headers(response, origin)
            else:
                response = json_error(403, "origin_not_allowed",
                                      "cross-origin requests from this origin are not allowed "
                                      "(the server's --cors-origin list)")
        elif cross and not allowed and (_is_ws_upgrade(request)
                                        or request.method not in ("GET", "HEAD")):
            response = json_error(403, "origin_not_allowed",
                                  "requests from this origin are not allowed "
                                  "(the server's --cors-origin list)")
        else:
            response = await handler(request)
            if cross and allowed and not response.prepared:
                _cors_headers(response, origin)
        if not response.prepared:  # a WebSocket has sent its headers already
            for name, value in SECURITY_HEADERS.items():
                response.headers.setdefault(name, value)
            vary = response.headers.get("Vary", "")
            if policy.configured and "origin" not in vary.lower():
                response.headers["Vary"] = f"{vary}, Origin" if vary else "Origin"
        return response

    return cors_and_headers

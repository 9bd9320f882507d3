"""JSON for the errors aiohttp answers below the application: bad HTTP framing, oversized
request lines or headers (400), and exceptions that escape every middleware (500).

aiohttp answers those from ``RequestHandler.handle_error`` in text/plain, before any
middleware sees the request, and it has no public hook for their body: ``web.run_app``
builds its own runner, so a subclass cannot be slotted in. ``install`` wraps the method once
per process. The wrapper keeps aiohttp's logging and its closing of the connection, and
changes only the body, and only for connections served by one of our applications (those
that carry STATE_KEY); anything else in the process keeps aiohttp's answer.
"""
from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.web_protocol import RequestHandler

from streamer.app_state import STATE_KEY
from streamer.errors import json_error

_MESSAGES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request is not valid HTTP/1.1 (framing, request line or headers)"),
    413: ("payload_too_large", "the request is too large"),
    431: ("headers_too_large", "the request headers are too large"),
    500: ("internal_error", "internal server error"),
}

_original = RequestHandler.handle_error


def _ours(handler: RequestHandler) -> bool:
    app = getattr(getattr(handler, "_request_handler", None), "__self__", None)
    return isinstance(app, web.Application) and STATE_KEY in app


def _json_handle_error(self: RequestHandler, request: Any, status: int = 500,
                       exc: BaseException | None = None, message: str | None = None) -> web.StreamResponse:
    response = _original(self, request, status, exc, message)  # logs; raises if output started
    if not _ours(self):
        return response
    code, text = _MESSAGES.get(status, ("http_error", "the request failed"))
    out = json_error(status, code, text)
    out.force_close()
    return out


def install() -> None:
    """Idempotent: every app created in this process shares the one wrapper."""
    if RequestHandler.handle_error is not _json_handle_error:
        RequestHandler.handle_error = _json_handle_error  # type: ignore[method-assign]

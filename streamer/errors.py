"""JSON errors: every failure a client sees is {"error": {"status", "code", "message"}} with a
4xx/5xx (``status`` repeats the HTTP status, for clients that only keep the body).

Handlers raise ApiError; ``api_error_of`` is the one place that turns an engine error or a
full engine queue into one (portraits.py raises it, the middleware answers it).
"""
from __future__ import annotations

import re
from typing import Mapping

from aiohttp import web

from engine.api import EngineError, InvalidImageError, NoFaceError
from streamer.runtime.engine_worker import QueueFullError
from streamer.strict_json import dumps


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None, close: bool = False) -> None:
        super().__init__(message)
        self.close = close  # close the connection after answering (a body left half-read)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(status: int, code: str, message: str) -> dict:
    return {"error": {"status": status, "code": code, "message": message}}


def json_error(status: int, code: str, message: str,
               headers: Mapping[str, str] | None = None) -> web.Response:
    """The response for an error; only middleware builds one (handlers raise ApiError)."""
    return web.Response(status=status, text=dumps(error_body(status, code, message)),
                        content_type="application/json", headers=dict(headers or {}))


_PATH = re.compile(r"(?:[A-Za-z]:)?[\\/][^\s'\"():,;]*[\\/][^\s'\"():,;]*")


def safe_engine_message(text: str) -> str:
    """An engine's message, short and without file paths (an engine may word it carelessly)."""
    text = text.split("Traceback", 1)[0]
    return _PATH.sub("<path>", text).strip()[:200] or "the image could not be used"


def api_error_of(exc: BaseException) -> ApiError | None:
    """The client-facing error for a failure the server knows, or None for a bug."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, QueueFullError):
        return ApiError(503, "busy", "the engine queue is full; retry later",
                        {"Retry-After": str(max(1, round(exc.retry_after_s)))})
    if isinstance(exc, NoFaceError):
        return ApiError(422, "no_face", "no face found in source_image")
    if isinstance(exc, InvalidImageError):
        return ApiError(422, "invalid_image", safe_engine_message(str(exc)))
    if isinstance(exc, EngineError):
        return ApiError(500, exc.code, "the engine failed to process this request")
    return None

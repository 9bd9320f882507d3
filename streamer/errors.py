"""JSON errors: every failure a client sees is {"error": {"code", "message"}} with a 4xx/5xx."""
from __future__ import annotations

import json
from typing import Mapping

from aiohttp import web


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})


def error_body(code: str, message: str) -> dict:
    return {"error": {"code": code, "message": message}}


def json_error(status: int, code: str, message: str,
               headers: Mapping[str, str] | None = None) -> web.Response:
    return web.Response(status=status, text=json.dumps(error_body(code, message)),
                        content_type="application/json", headers=dict(headers or {}))

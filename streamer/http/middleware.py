"""One middleware for every request: JSON errors for everything, and the seed's metrics.

Handlers raise ApiError (or let an engine error / full queue escape); unknown routes and
wrong methods come from aiohttp as HTTPException. All of them leave here as
{"error": {"status", "code", "message"}}. Unexpected exceptions are logged with their traceback
and answered with a fixed message: no stack trace or file path ever reaches a client.
"""
from __future__ import annotations

import logging
import time
from typing import Awaitable, Callable

from aiohttp import web

from streamer.app_state import STATE_KEY
from streamer.errors import api_error_of, json_error
from streamer.routes import route_template

log = logging.getLogger("streamer")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_HTTP_CODES: dict[int, tuple[str, str]] = {
    400: ("bad_request", "the request could not be read"),
    404: ("not_found", "no such route"),
    405: ("method_not_allowed", "method not allowed on this route"),
    413: ("payload_too_large", "the request body is too large"),
    415: ("unsupported_media_type", "unsupported content type"),
}


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> web.Response:
    code, message = _HTTP_CODES.get(exc.status, ("http_error", exc.reason or "request failed"))
    if exc.status == 404:
        message = f"no route for {request.method} {request.path[:200]}"
    elif exc.status == 405:
        allowed = exc.headers.get("Allow", "")
        message = f"method {request.method} not allowed here" + (f"; allowed: {allowed}" if allowed else "")
    elif exc.status == 413:
        limit = request.app[STATE_KEY].config.max_upload_mb
        message = f"the request body is larger than the {limit:g} MB limit"
    headers = {k: v for k, v in exc.headers.items() if k.lower() in ("allow", "retry-after")}
    return json_error(exc.status, code, message, headers)


def _to_response(exc: BaseException, request: web.Request) -> web.StreamResponse:
    api = api_error_of(exc)
    if api is not None:
        response = json_error(api.status, api.code, api.message, api.headers)
        if api.close:
            response.force_close()
        return response
    if isinstance(exc, web.HTTPException):
        return _from_http_exception(exc, request)
    log.exception("unhandled error in %s %s", request.method, request.path[:200])
    return json_error(500, "internal_error", "internal server error")


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    t0 = time.perf_counter()
    state = request.app.get(STATE_KEY)
    in_flight = state.metrics.in_flight.labels(endpoint=route_template(request)) if state else None
    if in_flight is not None:
        in_flight.inc()
    try:
        response = await handler(request)
        # Handlers may return (not raise) a non-JSON HTTP error: normalise it too.
        if isinstance(response, web.HTTPException) and response.status >= 400:
            response = _from_http_exception(response, request)
    except web.HTTPException as exc:
        response = exc if exc.status < 400 else _from_http_exception(exc, request)
    except Exception as exc:  # noqa: BLE001 - the last line of defence, logged above
        response = _to_response(exc, request)
    finally:
        if in_flight is not None:
            in_flight.dec()
    _record(request, response, time.perf_counter() - t0)
    return response


def _record(request: web.Request, response: web.StreamResponse, seconds: float) -> None:
    state = request.app.get(STATE_KEY)
    if state is None:
        return
    m = state.metrics
    endpoint = route_template(request)
    status = str(response.status)
    m.requests_total.labels(endpoint=endpoint, method=request.method, status=status).inc()
    m.request_duration.labels(endpoint=endpoint, method=request.method).observe(seconds)
    if response.status >= 400:
        m.errors_total.labels(endpoint=endpoint, status=status).inc()

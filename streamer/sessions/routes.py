"""REST for sessions: POST/GET/DELETE /sessions, and the WebSocket route."""
from __future__ import annotations

import time

from aiohttp import web

from streamer.access.control import (WS_PROTOCOL, issue_session_token, key_session_slot, pixel_limit,
                                     principal_of, session_visible, upload_limit)
from streamer.app_state import STATE_KEY
from streamer.errors import ApiError
from streamer.http.forms import Form, read_form
from streamer.http.portraits import prepare_portrait
from streamer.http.rest import parse_baseline
from streamer.sessions.ws import session_ws
from streamer.strict_json import json_response

CODECS = ("vp8", "h264")
_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")


def _int_field(value: str | None, name: str, default: int, low: int, high: int,
               multiple: int = 1) -> int:
    if value is None or value == "":
        return default
    try:
        x = int(value)
    except ValueError:
        x = None
    if x is None or x < low or x > high or x % multiple:
        extra = f", a multiple of {multiple}" if multiple > 1 else ""
        raise ApiError(400, "bad_request", f"{name} must be an integer from {low} to {high}{extra}")
    return x


def _parse_options(form: Form) -> tuple[int, int, str, bool]:
    fps = _int_field(form.text("fps"), "fps", 25, 1, 60)
    size = _int_field(form.text("size"), "size", 512, 128, 1024, 16)
    codec = (form.text("codec") or "vp8").lower()
    if codec not in CODECS:
        raise ApiError(400, "bad_request", "codec must be vp8 or h264")
    idle_raw = (form.text("idle_motion") or "true").lower()
    if idle_raw not in _TRUE + _FALSE:
        raise ApiError(400, "bad_request", "idle_motion must be true or false")
    return fps, size, codec, idle_raw in _TRUE


async def create_session(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    registry = state.sessions
    limits = state.config.sessions
    registry.check_capacity()  # an early 429 saves uploading a photo for nothing; holds nothing
    # The upload first, under its deadline: a client that stops sending holds no slot.
    form = await read_form(request, upload_limit(request, state), ("source_image",),
                           state.config.body_timeout_s)
    data = form.require_file("source_image")
    fps, size, codec, idle = _parse_options(form)
    baseline = parse_baseline(form.text("baseline"))
    if form.text("fps") in (None, ""):
        fps = limits.default_fps
    if form.text("size") in (None, ""):
        size = limits.default_size
    # Only now, with a complete and valid request, take a slot (and the key's quota) for
    # the portrait's preparation.
    with key_session_slot(request, state):
        registry.reserve()
        try:
            key, source = await prepare_portrait(state, data, pixel_limit(request, state))
        except BaseException:
            registry.unreserve()
            raise
        principal = principal_of(request)
        owner = principal.caller if principal.kind == "key" else None  # per-key WebSocket caps
        s = registry.add(key, source, fps, size, codec, idle, baseline, owner)
        body = {"session_id": s.id, "ws_url": f"ws://{request.host}/sessions/{s.id}/ws",
                "ice_servers": [{"urls": [u]} for u in state.config.ice_servers],
                "expires_in": limits.idle_timeout_s, "fps": fps, "size": size, "codec": codec,
                "baseline": baseline}
        body.update(issue_session_token(request, state, s.id))  # a key made it: a scoped token
    return json_response(body, status=201)


async def list_sessions(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    registry = state.sessions
    now = time.monotonic()
    return json_response({"sessions": [s.describe(now) for s in registry.active()
                                           if session_visible(request, state, s.id)]})


async def get_session(request: web.Request) -> web.Response:
    registry = request.app[STATE_KEY].sessions
    s = registry.get(request.match_info["session_id"])
    if s is None:
        raise ApiError(404, "not_found", "no such session")
    return json_response(s.describe(time.monotonic()))


async def delete_session(request: web.Request) -> web.Response:
    registry = request.app[STATE_KEY].sessions
    s = registry.get(request.match_info["session_id"])
    if s is None:
        raise ApiError(404, "not_found", "no such session")
    await registry.close_session(s, "deleted")
    return json_response({"deleted": True, "session_id": s.id})


async def ws_route(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    limits = state.config.sessions
    return await session_ws(request, state.sessions, list(state.config.ice_servers), limits,
                            request.get(WS_PROTOCOL))

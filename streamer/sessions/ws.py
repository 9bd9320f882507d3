"""The session WebSocket: validation, dispatch, flood control, one writer task per socket.

Everything the server sends on a socket goes through one bounded outbox and one writer
task, so replies, events and binary frames never interleave or pile up without bound.
"""
from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from typing import Any

from aiohttp import WSMsgType, web

from streamer import strict_json
from streamer.config import SessionLimits
from streamer.errors import ApiError
from streamer.sessions import events
from streamer.sessions.frames import PTS_HEADER, StreamKey
from streamer.sessions.messages import (MAX_TEXT_BYTES, Candidate, Message, MessageError, Offer,
                                        Ping, SetIdle, SetTarget, SubscribeFrames,
                                        UnsubscribeFrames, parse_message)
from streamer.sessions.registry import CLOSE_SESSION_ENDED, SessionRegistry
from streamer.sessions.session import Session
from streamer.sessions.speech_input import SocketSpeech
from streamer.sessions.speech_messages import SPEECH_MESSAGES
from streamer.sessions.webrtc import SdpError, Viewer

log = logging.getLogger(__name__)

# Frames above this size are cut off by aiohttp (close 1009); between MAX_TEXT_BYTES and
# this, the client gets a message_too_large event and the socket stays open.
MAX_WS_FRAME = 4 * MAX_TEXT_BYTES
FLOOD_ERRORS = 20  # more than this many errors ...
FLOOD_WINDOW_S = 10.0  # ... within this window closes the socket with 1008
CLOSE_POLICY = 1008
CLOSE_TOO_MANY = 4029  # a socket past the per-session/per-key/server caps (after an error event)
OUTBOX_EVENTS = 256


class SocketConn:
    """One connected WebSocket on a session."""

    def __init__(self, ws: web.WebSocketResponse, session: Session, registry: SessionRegistry,
                 ice_servers: list[str], limits: SessionLimits) -> None:
        self.ws = ws
        self.session = session
        self.registry = registry
        self.ice_servers = ice_servers
        self.limits = limits
        self.max_viewers_per_socket = limits.max_viewers_per_socket
        self.max_viewers_per_session = limits.max_viewers_per_session
        self.viewers: list[Viewer] = []
        self._offer_ids: dict[Viewer, Any] = {}
        self._internal_logged = False
        self._events: deque[str] = deque(maxlen=OUTBOX_EVENTS)  # a stalled reader loses the oldest
        self._frame: bytes | None = None
        self._frame_timestamps = False  # subscribe_frames {"timestamps": true}: PTS_HEADER first
        self._wake = asyncio.Event()
        self._close_code: int | None = None
        self._errors: deque[float] = deque()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._closed = asyncio.Event()
        self.speech = SocketSpeech(session.speech)

    # --- outgoing ---
    def send_event(self, event: dict) -> None:
        if self._close_code is None:
            try:
                text = strict_json.dumps(event)
            except ValueError as exc:  # a non-finite number: a server bug, never sent as NaN
                log.warning("dropped an event that is not strict JSON: %s", exc)
                return
            self._events.append(text)
            self._wake.set()

    def _reply(self, event: dict, msg_id: Any) -> None:
        if msg_id is not None:
            event["id"] = msg_id
        self.send_event(event)

    def deliver_frame(self, data: bytes, pts_ms: float) -> None:
        """An encoded frame of this socket's stream (frames.py fan-out): newest wins, an unsent
        older frame is dropped, so a slow reader gets fewer frames, never old ones."""
        if self._close_code is None and self.session.frames.subscribed(self):
            if self._frame_timestamps:
                data = PTS_HEADER.pack(pts_ms) + data
            self._frame = data
            self._wake.set()

    async def _write_loop(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._events:
                    await self.ws.send_str(self._events.popleft())
                if self._frame is not None:
                    data, self._frame = self._frame, None
                    await self.ws.send_bytes(data)
                if self._close_code is not None and not self._events:
                    return
        except (ConnectionError, RuntimeError, asyncio.CancelledError):
            return  # the socket went away underneath us; the reader side cleans up

    async def close(self, code: int, final: dict | None = None) -> None:
        """Flush (bounded by a timeout), optionally send one final event, close with code."""
        if self._close_code is None:
            if final is not None:
                self._events.append(strict_json.dumps(final))
            self._close_code = code
            self._wake.set()
            try:
                await asyncio.wait_for(asyncio.shield(self._writer), timeout=0.5)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                self._writer.cancel()
            try:
                await asyncio.wait_for(self.ws.close(code=code), timeout=1.0)
            except (asyncio.TimeoutError, Exception):  # noqa: BLE001
                pass
        await self.cleanup()

    # --- incoming ---
    def error(self, code: str, message: str, request_type: str | None, msg_id: Any = None) -> bool:
        """Send an error event; True when the socket crossed the flood limit."""
        self._reply(events.error(code, message, request_type), msg_id)
        now = time.monotonic()
        self._errors.append(now)
        while self._errors and now - self._errors[0] > FLOOD_WINDOW_S:
            self._errors.popleft()
        return len(self._errors) > FLOOD_ERRORS

    async def handle_text(self, text: str) -> bool:
        """Handle one text message. Returns True when the socket must be closed (flood)."""
        try:
            msg = parse_message(text, self.session.fps)
            await self._dispatch(msg)
        except MessageError as exc:
            return self.error(exc.code, exc.message, exc.request_type, exc.msg_id)
        except Exception:  # noqa: BLE001 - a bug must cost one error event, not the socket
            if not self._internal_logged:  # one traceback per socket, never a log flood
                self._internal_logged = True
                log.exception("session %s: unexpected error handling a message", self.session.id)
            return self.error("internal_error", "the server could not handle this message", None)
        return False

    def handle_binary(self, data: bytes) -> bool:
        """One binary message: PCM for the open utterance. True when the socket must close."""
        try:
            self.speech.handle_binary(data)
        except MessageError as exc:
            return self.error(exc.code, exc.message, exc.request_type, exc.msg_id)
        return False

    async def _dispatch(self, msg: Message) -> None:
        s = self.session
        if isinstance(msg, SetTarget):
            s.set_target(msg.emotions, msg.controls, msg.transition_ms)
            self._reply(s.state_event(), msg.id)
        elif isinstance(msg, SetIdle):
            s.set_idle(msg.enabled)
            self._reply(s.state_event(), msg.id)
        elif isinstance(msg, Ping):
            self._reply(events.pong(msg.t), msg.id)
        elif isinstance(msg, SubscribeFrames):
            self._subscribe(msg)
        elif isinstance(msg, UnsubscribeFrames):
            s.frames.unsubscribe(self)
            self._frame = None
        elif isinstance(msg, Offer):
            await self._offer(msg)
        elif isinstance(msg, Candidate):
            await self._candidate(msg)
        elif isinstance(msg, SPEECH_MESSAGES):
            self.speech.handle(msg)

    def _subscribe(self, msg: SubscribeFrames) -> None:
        s = self.session
        if not s.frames.subscribed(self):  # changing one's own stream never hits a cap
            problem = self.registry.subscription_refusal(s)
            if problem is not None:
                raise MessageError("too_many_subscriptions", problem, "subscribe_frames", msg.id)
        # One stream per (format, quality, fps): sockets with and without timestamps share its
        # encode; the 8-byte header is added per socket on delivery.
        self._frame_timestamps = msg.timestamps
        s.frames.subscribe(self, StreamKey(msg.format, msg.quality, msg.fps or float(s.fps)))

    async def _offer(self, msg: Offer) -> None:
        s = self.session
        if len(self.viewers) >= self.max_viewers_per_socket or \
                len(s.viewers) >= self.max_viewers_per_session:
            raise MessageError("rate_limited", "too many viewers on this socket or session "
                               f"(at most {self.max_viewers_per_socket} per socket, "
                               f"{self.max_viewers_per_session} per session)", "offer", msg.id)
        viewer = Viewer(s.video, self.ice_servers, self._viewer_closed,
                        connect_timeout_s=self.limits.viewer_connect_timeout_s,
                        speech=s.speech)
        try:
            sdp = await viewer.answer(msg.sdp, s.codec)
        except SdpError as exc:
            await viewer.close()
            raise MessageError("sdp_error", str(exc)[:500], "offer", msg.id) from None
        if self._close_code is not None or s.closed:
            await viewer.close()
            return
        self.viewers.append(viewer)
        self._offer_ids[viewer] = msg.id
        s.viewers.add(viewer)
        self.registry.update_viewer_gauge()
        self._reply(events.answer(sdp), msg.id)

    async def _candidate(self, msg: Candidate) -> None:
        if not self.viewers:
            raise MessageError("invalid_message", "candidate: send an offer first",
                               "candidate", msg.id)
        try:  # trickled candidates (and their end, null) belong to this socket's newest offer
            await self.viewers[-1].add_candidate(msg.candidate, msg.sdp_mid, msg.sdp_mline_index)
        except SdpError as exc:
            raise MessageError("invalid_value", str(exc)[:500], "candidate", msg.id) from None

    def _viewer_closed(self, viewer: Viewer) -> None:
        self.session.viewers.discard(viewer)  # the session stops rendering for it
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        offer_id = self._offer_ids.pop(viewer, None)
        self.registry.update_viewer_gauge()
        if viewer.close_reason in ("connect_timeout", "failed"):  # the client did not close it
            self.send_event(events.viewer_closed(viewer.close_reason, offer_id))

    async def cleanup(self) -> None:
        """The socket is gone: close its peers, leave the session. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.speech.close()  # an open utterance plays out
        self._close_code = self._close_code or 1000
        self._wake.set()
        self.session.frames.unsubscribe(self)
        self.session.sockets.discard(self)
        self.session.touch()  # the idle timeout counts from the last socket leaving
        await asyncio.gather(*(v.close() for v in list(self.viewers)), return_exceptions=True)
        if not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)


async def session_ws(request: web.Request, registry: SessionRegistry, ice_servers: list[str],
                     limits: SessionLimits, protocol: str | None = None) -> web.StreamResponse:
    session = registry.get(request.match_info["session_id"])
    if session is None:
        raise ApiError(404, "not_found", "no such session")
    # timeout bounds the close handshake, so shutdown never waits on a silent client.
    # heartbeat: a ping every ws_heartbeat_s; no pong within half of it closes the socket, so a
    # client that vanished without closing stops holding the session (the idle timeout runs).
    # protocol: the lpa-token.<t> subprotocol the token came in; browsers need it echoed.
    ws = web.WebSocketResponse(max_msg_size=MAX_WS_FRAME, timeout=1.0, autoping=True,
                               heartbeat=limits.ws_heartbeat_s or None,
                               protocols=(protocol,) if protocol else ())
    await ws.prepare(request)
    if session.closed:  # it ended while the upgrade was answered
        await _refuse(ws, events.closed("deleted"), CLOSE_SESSION_ENDED)
        return ws
    refusal = registry.socket_refusal(session)
    if refusal is not None:
        # Upgraded first so a browser can read why (it never sees an HTTP status).
        await _refuse(ws, events.error("too_many_sockets", refusal, None), CLOSE_TOO_MANY)
        return ws
    conn = SocketConn(ws, session, registry, ice_servers, limits)
    session.sockets.add(conn)  # no await since the cap check: the count cannot race
    session.touch()
    conn.send_event(session.hello_event())
    if session.frames_rendered > 0:
        conn.send_event(events.ready())
    try:
        async for msg in ws:
            session.touch()
            if msg.type == WSMsgType.TEXT:
                flood = await conn.handle_text(msg.data)
            elif msg.type == WSMsgType.BINARY:
                flood = conn.handle_binary(msg.data)
            else:
                break
            if flood:
                log.info("session %s: closing a socket that keeps sending bad messages",
                         session.id)
                await conn.close(CLOSE_POLICY)  # policy violation
                break
            if session.closed:
                break
    except ConnectionError:
        pass
    except Exception:  # noqa: BLE001 - after the upgrade an exception must not become an
        # HTTP 500 written into the WebSocket stream: log it, close the socket normally.
        log.exception("session %s: socket handler failed", session.id)
        await conn.close(1011)
    finally:
        await conn.cleanup()
    return ws


async def _refuse(ws: web.WebSocketResponse, event: dict, code: int) -> None:
    try:
        await ws.send_str(strict_json.dumps(event))
        await asyncio.wait_for(ws.close(code=code), 1.0)
    except (ConnectionError, RuntimeError, asyncio.TimeoutError):
        pass

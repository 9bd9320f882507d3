"""The session WebSocket: validation, dispatch, flood control, one writer task per socket.

Everything the server sends on a socket goes through one bounded outbox and one writer
task, so replies, events and binary frames never interleave or pile up without bound.
"""
from __future__ import annotations

import asyncio
import json
import logging
import time
from collections import deque
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from streamer.errors import ApiError
from streamer.sessions import events
from streamer.sessions.frames import PTS_HEADER, FrameSubscription, encode_frame_async
from streamer.sessions.messages import (MAX_TEXT_BYTES, Candidate, Message, MessageError, Offer,
                                        Ping, SetIdle, SetTarget, SubscribeFrames,
                                        UnsubscribeFrames, parse_message)
from streamer.sessions.registry import SessionRegistry
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
OUTBOX_EVENTS = 256


class SocketConn:
    """One connected WebSocket on a session."""

    def __init__(self, ws: web.WebSocketResponse, session: Session, registry: SessionRegistry,
                 ice_servers: list[str], max_viewers_per_socket: int,
                 max_viewers_per_session: int) -> None:
        self.ws = ws
        self.session = session
        self.registry = registry
        self.ice_servers = ice_servers
        self.max_viewers_per_socket = max_viewers_per_socket
        self.max_viewers_per_session = max_viewers_per_session
        self.viewers: list[Viewer] = []
        self.subscription: FrameSubscription | None = None
        self._events: deque[str] = deque(maxlen=OUTBOX_EVENTS)  # a stalled reader loses the oldest
        self._frame: bytes | None = None
        self._wake = asyncio.Event()
        self._close_code: int | None = None
        self._errors: deque[float] = deque()
        self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        self._closed = asyncio.Event()
        self.speech = SocketSpeech(session.speech)

    # --- outgoing ---
    def send_event(self, event: dict) -> None:
        if self._close_code is None:
            self._events.append(json.dumps(event))
            self._wake.set()

    def _reply(self, event: dict, msg_id: Any) -> None:
        if msg_id is not None:
            event["id"] = msg_id
        self.send_event(event)

    def wants_frames(self) -> bool:
        return self.subscription is not None

    def on_frame(self, frame: np.ndarray, now: float) -> None:
        sub = self.subscription
        if sub is None or not sub.due(now) or self._close_code is not None:
            return
        sub.busy = True
        sub.last_sent = now
        pts = self.session.frame_pts_ms()
        asyncio.get_running_loop().create_task(self._encode(sub, frame, pts))

    async def _encode(self, sub: FrameSubscription, frame: np.ndarray, pts: float = 0.0) -> None:
        try:
            data = await encode_frame_async(frame, sub.format, sub.quality)
        except Exception as exc:  # noqa: BLE001
            log.warning("frame encode failed: %r", exc)
            return
        finally:
            sub.busy = False
        if sub.timestamps:
            data = PTS_HEADER.pack(pts) + data
        if self.subscription is sub and self._close_code is None:
            self._frame = data  # newest wins: an unsent older frame is dropped
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
                self._events.append(json.dumps(final))
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
            self.subscription = FrameSubscription(msg.format, msg.quality, msg.fps or s.fps,
                                                  timestamps=msg.timestamps)
        elif isinstance(msg, UnsubscribeFrames):
            self.subscription = None
            self._frame = None
        elif isinstance(msg, Offer):
            await self._offer(msg)
        elif isinstance(msg, Candidate):
            await self._candidate(msg)
        elif isinstance(msg, SPEECH_MESSAGES):
            self.speech.handle(msg)

    async def _offer(self, msg: Offer) -> None:
        s = self.session
        if len(self.viewers) >= self.max_viewers_per_socket or \
                len(s.viewers) >= self.max_viewers_per_session:
            raise MessageError("rate_limited", "too many viewers on this socket or session "
                               f"(at most {self.max_viewers_per_socket} per socket, "
                               f"{self.max_viewers_per_session} per session)", "offer", msg.id)
        viewer = Viewer(s.fps, s.size, self.ice_servers, self._viewer_closed, s.speech)
        try:
            sdp = await viewer.answer(msg.sdp, s.codec)
        except SdpError as exc:
            await viewer.close()
            raise MessageError("sdp_error", str(exc)[:500], "offer", msg.id) from None
        if self._close_code is not None or s.closed:
            await viewer.close()
            return
        self.viewers.append(viewer)
        s.viewers.add(viewer)
        if s.last_frame is not None:
            viewer.push_frame(s.last_frame)  # the first frame without waiting a tick
        self.registry.update_viewer_gauge()
        self._reply(events.answer(sdp), msg.id)

    async def _candidate(self, msg: Candidate) -> None:
        if not self.viewers:
            raise MessageError("invalid_message", "candidate: send an offer first",
                               "candidate", msg.id)
        try:  # trickled candidates belong to this socket's newest offer
            await self.viewers[-1].add_candidate(msg.candidate, msg.sdp_mid, msg.sdp_mline_index)
        except SdpError as exc:
            raise MessageError("invalid_value", str(exc)[:500], "candidate", msg.id) from None

    def _viewer_closed(self, viewer: Viewer) -> None:
        self.session.viewers.discard(viewer)
        if viewer in self.viewers:
            self.viewers.remove(viewer)
        self.registry.update_viewer_gauge()

    async def cleanup(self) -> None:
        """The socket is gone: close its peers, leave the session. Idempotent."""
        if self._closed.is_set():
            return
        self._closed.set()
        self.speech.close()  # an open utterance plays out
        self._close_code = self._close_code or 1000
        self._wake.set()
        self.subscription = None
        self.session.sockets.discard(self)
        self.session.touch()  # the idle timeout counts from the last socket leaving
        await asyncio.gather(*(v.close() for v in list(self.viewers)), return_exceptions=True)
        if not self._writer.done():
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)


async def session_ws(request: web.Request, registry: SessionRegistry, ice_servers: list[str],
                     max_viewers_per_socket: int, max_viewers_per_session: int,
                     protocol: str | None = None) -> web.StreamResponse:
    session = registry.get(request.match_info["session_id"])
    if session is None:
        raise ApiError(404, "not_found", "no such session")
    # timeout bounds the close handshake, so shutdown never waits on a silent client.
    # protocol: the lpa-token.<t> subprotocol the token came in; browsers need it echoed.
    ws = web.WebSocketResponse(max_msg_size=MAX_WS_FRAME, timeout=1.0, autoping=True,
                               protocols=(protocol,) if protocol else ())
    await ws.prepare(request)
    conn = SocketConn(ws, session, registry, ice_servers, max_viewers_per_socket,
                      max_viewers_per_session)
    session.sockets.add(conn)
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
    finally:
        await conn.cleanup()
    return ws

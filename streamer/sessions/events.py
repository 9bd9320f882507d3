"""Messages the server sends on a session WebSocket, one builder per type (docs/protocol.md).

The counterpart of messages.py, which parses what clients send. Every outgoing event is a
plain JSON-ready dict built here; a reply to a request gets the request's ``id`` added by
the socket (ws.py).
"""
from __future__ import annotations

import time
from typing import Any


def hello(session_id: str, fps: int, size: int, codec: str, idle_motion: bool,
          baseline: str) -> dict:
    return {"type": "hello", "session_id": session_id, "fps": fps, "size": size,
            "codec": codec, "idle_motion": idle_motion, "baseline": baseline}


def ready() -> dict:
    """The session's first frame exists: video and subscribed frames follow."""
    return {"type": "ready"}


def state(seq: int, target: dict, transition_ms: int, idle_motion: bool) -> dict:
    return {"type": "state", "seq": seq, "target": target, "transition_ms": transition_ms,
            "idle_motion": idle_motion}


def stats(fps: int, render_ms: float | None, dropped: int, viewers: int, frames: int,
          control_latency_ms: float | None) -> dict:
    return {"type": "stats", "fps": fps, "render_ms": render_ms, "dropped": dropped,
            "viewers": viewers, "frames": frames, "control_latency_ms": control_latency_ms}


def error(code: str, message: str, request_type: str | None) -> dict:
    """request_type: the client message that failed, or None for the session's own errors."""
    return {"type": "error", "code": code, "message": message, "request_type": request_type}


def pong(t: Any) -> dict:
    return {"type": "pong", "t": t, "server_time": time.time()}


def answer(sdp: str) -> dict:
    return {"type": "answer", "sdp": sdp}


def closed(reason: str) -> dict:
    """The last event before the server closes the socket with 4000."""
    return {"type": "closed", "reason": reason}


def viewer_closed(reason: str, offer_id: Any) -> dict:
    """A viewer the client did not close is gone: reason "connect_timeout" (not connected
    within the deadline) or "failed" (ICE/DTLS failed). offer_id: the offer's ``id``."""
    return {"type": "viewer_closed", "reason": reason, "offer_id": offer_id}

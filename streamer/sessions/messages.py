"""Validation of client WebSocket messages: raw text -> one typed message, or MessageError.

Every rule of docs/protocol.md that concerns a single message lives here, so the socket
handler only dispatches. Nothing here touches a session.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

from engine.motion import CONTROL_RANGES, EMOTIONS
from streamer import strict_json

MAX_TEXT_BYTES = 256 * 1024
MAX_TRANSITION_MS = 10_000
MAX_MLINE_INDEX = 1023  # far more m-lines than any offer has
DEFAULT_TRANSITION_MS = 250
FRAME_FORMATS = ("jpeg", "webp")


class MessageError(Exception):
    """A client message that gets an ``error`` event (the socket stays open)."""

    def __init__(self, code: str, message: str, request_type: str | None = None,
                 msg_id: Any = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.request_type = request_type
        self.msg_id = msg_id


@dataclass(frozen=True)
class Offer:
    sdp: str
    id: Any = None


@dataclass(frozen=True)
class Candidate:
    candidate: str | None  # None ends trickling
    sdp_mid: str | None
    sdp_mline_index: int | None
    id: Any = None


@dataclass(frozen=True)
class SetTarget:
    """set_emotion / set_emotions / set_controls / reset, normalised.

    ``emotions`` None keeps the emotion target; ``controls`` only names the changed ones.
    """

    type: str
    emotions: dict[str, float] | None
    controls: dict[str, float]
    transition_ms: int
    reset_controls: bool = False
    id: Any = None


@dataclass(frozen=True)
class SetIdle:
    enabled: bool
    id: Any = None


@dataclass(frozen=True)
class SubscribeFrames:
    format: str
    quality: int
    fps: float | None  # None: the session fps
    id: Any = None
    timestamps: bool = False  # prefix each frame with its presentation time (speech sync)


@dataclass(frozen=True)
class UnsubscribeFrames:
    id: Any = None


@dataclass(frozen=True)
class Ping:
    t: Any
    id: Any = None


Message = Union[Offer, Candidate, SetTarget, SetIdle, SubscribeFrames, UnsubscribeFrames, Ping]


def _number(obj: dict, key: str, low: float, high: float, default: float | None,
            mtype: str, msg_id: Any) -> float:
    if key not in obj or (obj[key] is None and default is not None):
        if default is None:
            raise MessageError("invalid_message", f"{mtype}: '{key}' is required", mtype, msg_id)
        return default
    v = strict_json.finite_number(obj[key])  # the one numeric check: never raises
    if v is None or v < low or v > high:
        raise MessageError("invalid_value",
                           f"{mtype}: '{key}' must be a number between {low:g} and {high:g}",
                           mtype, msg_id)
    return v


def _integer(obj: dict, key: str, low: int, high: int, mtype: str, msg_id: Any,
             default: int | None = None) -> int:
    v = _number(obj, key, low, high, default, mtype, msg_id)
    if v != int(v):
        raise MessageError("invalid_value", f"{mtype}: '{key}' must be an integer between "
                           f"{low} and {high}", mtype, msg_id)
    return int(v)


def _transition(obj: dict, mtype: str, msg_id: Any) -> int:
    return int(round(_number(obj, "transition_ms", 0, MAX_TRANSITION_MS,
                             DEFAULT_TRANSITION_MS, mtype, msg_id)))


def _emotion_name(v: Any, mtype: str, msg_id: Any) -> str:
    if not isinstance(v, str) or v not in EMOTIONS:
        raise MessageError("invalid_value",
                           f"{mtype}: unknown emotion {v!r}; valid: {', '.join(EMOTIONS)}",
                           mtype, msg_id)
    return v


def parse_message(text: str, session_fps: int) -> Message:
    """Parse and validate one text frame. Raises MessageError with a stable code."""
    if len(text) > MAX_TEXT_BYTES or len(text.encode("utf-8", "surrogatepass")) > MAX_TEXT_BYTES:
        raise MessageError("message_too_large",
                           f"text messages are limited to {MAX_TEXT_BYTES} bytes")
    try:
        obj = strict_json.loads(text)
    except strict_json.NumberError as exc:
        mtype, msg_id = _type_and_id(text)
        raise MessageError("invalid_value", f"{mtype or 'message'}: {exc}", mtype, msg_id) from None
    except (ValueError, RecursionError):
        raise MessageError("invalid_json", "message is not valid JSON") from None
    if not isinstance(obj, dict):
        raise MessageError("invalid_message", "message must be a JSON object")
    msg_id = _echoable_id(obj.get("id"))
    mtype = obj.get("type")
    if not isinstance(mtype, str):
        raise MessageError("invalid_message", "message needs a string 'type'", None, msg_id)
    parser = _PARSERS.get(mtype)
    if parser is None:
        raise MessageError("unknown_type", f"unknown message type {mtype[:64]!r}; valid: "
                           + ", ".join(sorted(_PARSERS)), mtype[:64], msg_id)
    return parser(obj, session_fps, msg_id)


def _echoable_id(msg_id: Any) -> Any:
    if msg_id is not None and not isinstance(msg_id, str) \
            and strict_json.finite_number(msg_id) is None:
        return None  # only strings and finite numbers are echoed
    return msg_id


def _type_and_id(text: str) -> tuple[str | None, Any]:
    """For the error event of a message refused for a bad number: its type and id, read with
    the bad numbers blanked (None), so the client can tell which request failed."""
    try:
        obj = strict_json.loads_blanking(text)
    except (ValueError, RecursionError):
        return None, None
    if not isinstance(obj, dict):
        return None, None
    mtype = obj.get("type")
    return (mtype if isinstance(mtype, str) and mtype in _PARSERS else None,
            _echoable_id(obj.get("id")))


def _offer(obj: dict, fps: int, msg_id: Any) -> Offer:
    sdp = obj.get("sdp")
    if not isinstance(sdp, str) or not sdp.strip():
        raise MessageError("invalid_message", "offer: 'sdp' must be a non-empty string",
                           "offer", msg_id)
    return Offer(sdp=sdp, id=msg_id)


def _candidate(obj: dict, fps: int, msg_id: Any) -> Candidate:
    c = obj.get("candidate")
    if c is None:
        return Candidate(None, None, None, msg_id)
    if not isinstance(c, dict):
        raise MessageError("invalid_message", "candidate: 'candidate' must be an object or null",
                           "candidate", msg_id)
    text = c.get("candidate")
    mid = c.get("sdpMid")
    index = c.get("sdpMLineIndex")
    if text is not None and not isinstance(text, str):
        raise MessageError("invalid_value", "candidate: 'candidate.candidate' must be a string",
                           "candidate", msg_id)
    if mid is not None and not isinstance(mid, str):
        raise MessageError("invalid_value", "candidate: 'sdpMid' must be a string",
                           "candidate", msg_id)
    if index is not None:
        index = _integer(c, "sdpMLineIndex", 0, MAX_MLINE_INDEX, "candidate", msg_id)
    if not text:
        return Candidate(None, mid, index, msg_id)
    return Candidate(text, mid, index, msg_id)


def _set_emotion(obj: dict, fps: int, msg_id: Any) -> SetTarget:
    name = _emotion_name(obj.get("emotion"), "set_emotion", msg_id)
    intensity = _number(obj, "intensity", 0, 1, 1.0, "set_emotion", msg_id)
    weights = {e: 0.0 for e in EMOTIONS}
    if name != "neutral":
        weights[name] = intensity
    return SetTarget("set_emotion", weights, {}, _transition(obj, "set_emotion", msg_id), id=msg_id)


def _set_emotions(obj: dict, fps: int, msg_id: Any) -> SetTarget:
    w = obj.get("weights")
    if not isinstance(w, dict):
        raise MessageError("invalid_message", "set_emotions: 'weights' must be an object",
                           "set_emotions", msg_id)
    weights = {e: 0.0 for e in EMOTIONS}
    for name in w:
        _emotion_name(name, "set_emotions", msg_id)
        weights[name] = _number(w, name, 0, 1, None, "set_emotions", msg_id)
    return SetTarget("set_emotions", weights, {}, _transition(obj, "set_emotions", msg_id),
                     id=msg_id)


_CONTROL_MESSAGE_KEYS = {"type", "id", "transition_ms"}


def _set_controls(obj: dict, fps: int, msg_id: Any) -> SetTarget:
    controls: dict[str, float] = {}
    for key in obj:
        if key in _CONTROL_MESSAGE_KEYS:
            continue
        r = CONTROL_RANGES.get(key)
        if r is None:
            raise MessageError("invalid_value", f"set_controls: unknown control {key[:64]!r}; "
                               "valid: " + ", ".join(CONTROL_RANGES), "set_controls", msg_id)
        controls[key] = _number(obj, key, r.low, r.high, None, "set_controls", msg_id)
    return SetTarget("set_controls", None, controls, _transition(obj, "set_controls", msg_id),
                     id=msg_id)


def _reset(obj: dict, fps: int, msg_id: Any) -> SetTarget:
    return SetTarget("reset", {e: 0.0 for e in EMOTIONS}, {k: 0.0 for k in CONTROL_RANGES},
                     _transition(obj, "reset", msg_id), reset_controls=True, id=msg_id)


def _set_idle(obj: dict, fps: int, msg_id: Any) -> SetIdle:
    enabled = obj.get("enabled")
    if not isinstance(enabled, bool):
        raise MessageError("invalid_value", "set_idle: 'enabled' must be true or false",
                           "set_idle", msg_id)
    return SetIdle(enabled, msg_id)


def _subscribe(obj: dict, fps: int, msg_id: Any) -> SubscribeFrames:
    fmt = obj.get("format", "jpeg")
    if fmt not in FRAME_FORMATS:
        raise MessageError("invalid_value", "subscribe_frames: 'format' must be jpeg or webp",
                           "subscribe_frames", msg_id)
    quality = _integer(obj, "quality", 1, 100, "subscribe_frames", msg_id, default=80)
    sub_fps = _number(obj, "fps", 1, fps, float(fps), "subscribe_frames", msg_id)
    stamps = obj.get("timestamps", False)
    if not isinstance(stamps, bool):
        raise MessageError("invalid_value", "subscribe_frames: 'timestamps' must be true or false",
                           "subscribe_frames", msg_id)
    return SubscribeFrames(fmt, quality, sub_fps, msg_id, stamps)


def _unsubscribe(obj: dict, fps: int, msg_id: Any) -> UnsubscribeFrames:
    return UnsubscribeFrames(msg_id)


def _ping(obj: dict, fps: int, msg_id: Any) -> Ping:
    t = obj.get("t")
    if t is not None:
        if strict_json.finite_number(t) is None:
            raise MessageError("invalid_value", "ping: 't' must be a finite number", "ping", msg_id)
        t = t + 0  # echoed as sent, but never as -0.0
    return Ping(t, msg_id)


_PARSERS = {
    "offer": _offer,
    "candidate": _candidate,
    "set_emotion": _set_emotion,
    "set_emotions": _set_emotions,
    "set_controls": _set_controls,
    "reset": _reset,
    "set_idle": _set_idle,
    "subscribe_frames": _subscribe,
    "unsubscribe_frames": _unsubscribe,
    "ping": _ping,
}

# Speech messages (speak, speak_end, interrupt) live in their own module.
from streamer.sessions.speech_messages import PARSERS as _SPEECH_PARSERS  # noqa: E402

_PARSERS.update(_SPEECH_PARSERS)

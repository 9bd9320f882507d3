"""Speech events a session sends on its WebSockets (docs/protocol.md, "Speech")."""
from __future__ import annotations


def started(utterance_id: object, pts_ms: float) -> dict:
    """The utterance's first sample is playing (LiveKit's playback_started); pts_ms: where
    that sample sits on the session's media clock (the clock of WebSocket frame timestamps)."""
    return {"type": "speech_started", "id": utterance_id, "pts_ms": pts_ms}


def ended(utterance_id: object, duration_ms: int, interrupted: bool, pts_ms: float) -> dict:
    """It played out, or was cut by interrupt; duration_ms is the audio that played, pts_ms
    the media time where it stopped."""
    return {"type": "speech_ended", "id": utterance_id, "duration_ms": int(duration_ms),
            "interrupted": bool(interrupted), "pts_ms": pts_ms}


def accepted(utterance_id: object, duration_ms: int, queued_ms: int) -> dict:
    """POST /sessions/{id}/speech: the answer body (the file is queued)."""
    return {"id": utterance_id, "duration_ms": int(duration_ms), "queued_ms": int(queued_ms)}

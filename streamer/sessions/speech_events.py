"""Speech events a session sends on its WebSockets (docs/protocol.md, "Speech")."""
from __future__ import annotations


def started(utterance_id: object) -> dict:
    """The utterance's first sample is playing (LiveKit's playback_started)."""
    return {"type": "speech_started", "id": utterance_id}


def ended(utterance_id: object, duration_ms: int, interrupted: bool) -> dict:
    """It played out, or was cut by interrupt; duration_ms is the audio that played."""
    return {"type": "speech_ended", "id": utterance_id, "duration_ms": int(duration_ms),
            "interrupted": bool(interrupted)}


def accepted(utterance_id: object, duration_ms: int, queued_ms: int) -> dict:
    """POST /sessions/{id}/speech: the answer body (the file is queued)."""
    return {"id": utterance_id, "duration_ms": int(duration_ms), "queued_ms": int(queued_ms)}

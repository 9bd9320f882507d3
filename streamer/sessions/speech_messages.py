"""Validation of the speech messages (docs/protocol.md, "Speech"): speak, speak_end, interrupt.

Registered into messages.py's parser table, so parse_message returns these like any other
message; ws.py hands them to speech_input.py.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.speech.timings import Timing, parse_timings
from streamer.sessions.messages import MessageError
from streamer.sessions.speech import INPUT_RATES

PCM_FORMAT = "pcm_s16le"


@dataclass(frozen=True)
class Speak:
    id: Any  # the utterance id (string or number), echoed in speech_started/ended
    sample_rate: int
    timings: list[Timing] | None = None  # the client's phoneme/viseme timings


@dataclass(frozen=True)
class SpeakEnd:
    id: Any


@dataclass(frozen=True)
class Interrupt:
    id: Any = None


def _speak(obj: dict, fps: int, msg_id: Any) -> Speak:
    if msg_id is None:
        raise MessageError("invalid_message", "speak: 'id' (a string or number) is required",
                           "speak", None)
    fmt = obj.get("format", PCM_FORMAT)
    if fmt != PCM_FORMAT:
        raise MessageError("invalid_value", f"speak: 'format' must be {PCM_FORMAT!r}",
                           "speak", msg_id)
    rate = obj.get("sample_rate")
    if isinstance(rate, bool) or not isinstance(rate, int) or rate not in INPUT_RATES:
        raise MessageError("invalid_value", "speak: 'sample_rate' must be one of "
                           + ", ".join(map(str, INPUT_RATES)), "speak", msg_id)
    channels = obj.get("channels", 1)
    if isinstance(channels, bool) or channels != 1:
        raise MessageError("invalid_value", "speak: 'channels' must be 1 (mono)", "speak", msg_id)
    timings = None
    if obj.get("timings") is not None:
        try:
            timings = parse_timings(obj["timings"])
        except ValueError as exc:
            raise MessageError("invalid_value", f"speak: {exc}", "speak", msg_id) from None
    return Speak(msg_id, rate, timings)


def _speak_end(obj: dict, fps: int, msg_id: Any) -> SpeakEnd:
    return SpeakEnd(msg_id)


def _interrupt(obj: dict, fps: int, msg_id: Any) -> Interrupt:
    return Interrupt(msg_id)


PARSERS = {"speak": _speak, "speak_end": _speak_end, "interrupt": _interrupt}
SPEECH_MESSAGES = (Speak, SpeakEnd, Interrupt)

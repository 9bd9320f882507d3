"""POST /sessions/{id}/say: typed text spoken by espeak-ng on the server (a robot voice for
demos), queued like POST /speech. Offered only where espeak-ng is installed; /health says so
(``speech.tts``), and the demo page hides its text box otherwise.

espeak-ng runs as a subprocess without a shell, the text after ``--`` so that it can never be
read as an option, under a timeout, and at most MAX_RUNNING at a time (more get 429)."""
from __future__ import annotations

import asyncio
import secrets
from dataclasses import dataclass

from aiohttp import web

from streamer.access.control import upload_limit
from streamer.app_state import STATE_KEY
from streamer.errors import ApiError
from streamer.http.forms import read_form
from streamer.sessions.speech_mouth import RATE
from streamer.sessions.speech_routes import queue_pcm
from streamer.tts import synthesize
from streamer.video.audio import AudioError, decode_audio

MAX_TEXT_CHARS = 500
MAX_RUNNING = 2  # espeak-ng processes at once, per server


@dataclass
class TtsSlots:
    """How many espeak-ng processes this server runs now (one per app, not per process)."""
    running: int = 0
    limit: int = MAX_RUNNING


TTS_SLOTS = web.AppKey("tts_slots", TtsSlots)


def _check_text(text: str | None) -> str:
    if text is None or not text.strip():
        raise ApiError(400, "missing_field", "the field 'text' is required (the words to say)")
    text = text.strip()
    if len(text) > MAX_TEXT_CHARS:
        raise ApiError(400, "invalid_field", f"text must be at most {MAX_TEXT_CHARS} characters")
    if any(ord(c) < 32 and c not in "\t\n\r" for c in text):
        raise ApiError(400, "invalid_field", "text must not contain control characters")
    return text


async def post_say(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    s = state.sessions.get(request.match_info["session_id"])
    if s is None:
        raise ApiError(404, "not_found", "no such session")
    # The upload limit and body deadline of every POST route (the text is checked after).
    form = await read_form(request, upload_limit(request, state), (), state.config.body_timeout_s)
    text = _check_text(form.text("text"))
    utterance_id = form.text("id") or "say-" + secrets.token_urlsafe(6)
    if len(utterance_id) > 200:
        raise ApiError(400, "invalid_field", "id must be at most 200 characters")
    slots = request.app[TTS_SLOTS]
    if slots.running >= slots.limit:
        raise ApiError(429, "tts_busy", "the server is already speaking other texts",
                       {"Retry-After": "1"})
    slots.running += 1
    try:
        wav = await synthesize(text)
    finally:
        slots.running -= 1
    try:
        pcm = await asyncio.to_thread(decode_audio, wav, s.speech.max_queued_s, RATE)
    except AudioError as exc:  # espeak-ng wrote something unreadable: its fault, not the client's
        raise ApiError(502, "tts_failed", str(exc)) from None
    return await queue_pcm(s, utterance_id, pcm)

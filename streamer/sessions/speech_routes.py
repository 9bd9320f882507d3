"""POST /sessions/{id}/speech: an audio file (wav, mp3, ogg/opus, m4a, ...) for the session to
say, for clients that don't stream PCM. Decoded with PyAV off the event loop, resampled to
the timeline's 48 kHz mono, queued like a streamed utterance (same events, same bound)."""
from __future__ import annotations

import asyncio
import secrets
from typing import TYPE_CHECKING

import numpy as np

from aiohttp import web

from engine.speech.timings import parse_timings
from streamer.access.control import upload_limit
from streamer.app_state import STATE_KEY
from streamer.errors import ApiError
from streamer.http.forms import read_form
from streamer.sessions import events, speech_events
from streamer.sessions.speech import SpeechError
from streamer.sessions.speech_mouth import HOP, RATE
from streamer.strict_json import json_response
from streamer.video.audio import AudioError, decode_audio
from streamer import strict_json

if TYPE_CHECKING:
    from streamer.sessions.session import Session

FEED_CHUNK = 50 * HOP  # half a second per analysis step, then the loop gets a turn


async def post_speech(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    s = state.sessions.get(request.match_info["session_id"])
    if s is None:
        raise ApiError(404, "not_found", "no such session")
    form = await read_form(request, upload_limit(request, state), ("audio",),
                           state.config.body_timeout_s)
    data = form.require_file("audio")
    utterance_id = form.text("id") or "speech-" + secrets.token_urlsafe(6)
    if len(utterance_id) > 200:
        raise ApiError(400, "invalid_field", "id must be at most 200 characters")
    player = s.speech
    timings = None
    if form.text("timings"):
        try:
            timings = parse_timings(strict_json.loads(form.text("timings") or ""))
        except ValueError as exc:  # JSONDecodeError is a ValueError too
            raise ApiError(400, "invalid_field", f"timings: {exc}"[:500]) from None
    try:
        pcm = await asyncio.to_thread(decode_audio, data, player.max_queued_s, RATE)
    except AudioError as exc:
        code, message = exc.code, str(exc)
        for sock in list(s.sockets):  # a watching client learns why nothing was said
            sock.send_event(events.error(code, message, "speech"))
        raise ApiError(413 if code == "audio_too_long" else 400, code, message) from None
    return await queue_pcm(s, utterance_id, pcm, timings)


async def queue_pcm(s: "Session", utterance_id: str, pcm: np.ndarray,
                    timings: list | None = None) -> web.Response:
    """Queue decoded 48 kHz mono speech as one utterance: 202 SpeechAccepted, or 404/429.
    Shared by /speech (a file) and /say (espeak-ng's output)."""
    player = s.speech
    if s.closed:
        raise ApiError(404, "not_found", "no such session")
    u = None
    try:
        if player.queued_seconds() + pcm.size / RATE > player.max_queued_s:
            raise SpeechError("speech_buffer_full", f"the session already has "
                              f"{player.queued_seconds():.1f} s of speech queued; with this file "
                              f"it would pass {player.max_queued_s:g} s")
        u = player.begin(utterance_id, RATE, timings)
        for i in range(0, pcm.size, FEED_CHUNK):
            player.feed(u, pcm[i:i + FEED_CHUNK])
            await asyncio.sleep(0)
    except SpeechError as exc:
        # what is queued must play first: retry after about as long as that takes
        retry = str(max(1, round(player.queued_seconds())))
        raise ApiError(429, exc.code, exc.message, {"Retry-After": retry}) from None
    finally:
        if u is not None:
            player.end(u)  # never leave an open utterance blocking the queue
    s.touch()
    return json_response(speech_events.accepted(
        utterance_id, pcm.size * 1000 // RATE, int(player.queued_seconds() * 1000)), status=202)

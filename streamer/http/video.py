"""POST /render/video: one portrait + optional speech audio -> an mp4 (H.264 + AAC) or webm
(VP8 + Opus) clip whose lips follow the audio.

The event loop only parses and awaits: audio decoding, viseme analysis and encoding run in
threads, rendering goes through the EngineWorker in chunks of CHUNK_FRAMES (live sessions'
frames get in between chunks, so a long clip never starves them).
"""
from __future__ import annotations

import asyncio
from streamer import strict_json
import time

import numpy as np
from aiohttp import web

from engine.speech.coarticulation import n_frames_for
from engine.speech.timings import parse_timings, poses_from_timings
from streamer.access.control import pixel_limit, upload_limit
from streamer.app_state import STATE_KEY
from streamer.errors import ApiError
from streamer.http.forms import read_form
from streamer.http.portraits import prepare_portrait
from streamer.http.rest import DEFAULT_INTENSITY, parse_baseline, parse_emotion, parse_intensity
from streamer.video.audio import AUDIO_RATE, AudioError, decode_audio
from streamer.video.encode import CONTAINERS, MIME, ClipEncoder
from streamer.video.poses import PoseSource
from streamer.video.timeline import MotionTimeline, default_timeline, parse_timeline

MAX_DURATION_S = 120.0
MAX_AUDIO_BYTES = 32 * 1024 * 1024
DEFAULT_FPS = 25.0
DEFAULT_SILENT_S = 3.0
CHUNK_FRAMES = 8


def _bad(code: str, message: str, status: int = 400) -> ApiError:
    return ApiError(status, code, message)


def _parse_float(text: str | None, name: str, default: float, lo: float, hi: float) -> float:
    if text is None or text == "":
        return default
    try:
        v = float(text)
    except ValueError:
        raise _bad("invalid_" + name, f"{name} must be a number") from None
    if not np.isfinite(v) or not lo <= v <= hi:
        raise _bad("invalid_" + name, f"{name} must be within {lo:g}..{hi:g}")
    return v


def wanted_video_format(request: web.Request) -> str | None:
    """Accept: video/mp4 or video/webm -> the bytes instead of JSON."""
    for media in request.headers.get("Accept", "").split(","):
        media = media.split(";")[0].strip().lower()
        for fmt, mime in MIME.items():
            if media == mime:
                return fmt
    return None


async def handle_render_video(request: web.Request) -> web.Response:
    t0 = time.perf_counter()
    state = request.app[STATE_KEY]
    image_limit = upload_limit(request, state)
    form = await read_form(request, image_limit + MAX_AUDIO_BYTES, ("source_image", "audio"),
                           state.config.body_timeout_s)
    data = form.require_file("source_image")
    if len(data) > image_limit:
        raise _bad("file_too_large", f"source_image is larger than the {image_limit / 1048576:g} MB limit", 413)
    audio_bytes = form.raw("audio")
    if audio_bytes is not None and len(audio_bytes) > MAX_AUDIO_BYTES:
        raise _bad("audio_too_large", f"audio is larger than the {MAX_AUDIO_BYTES / 1048576:g} MB limit", 413)
    direct = wanted_video_format(request)
    fmt = (form.text("output_format") or direct or "mp4").lower()
    if fmt not in CONTAINERS:
        raise _bad("invalid_output_format", "output_format must be mp4 or webm")
    fps = _parse_float(form.text("fps"), "fps", DEFAULT_FPS, 1.0, 60.0)
    baseline = parse_baseline(form.text("baseline"))
    emotion = parse_emotion(form.text("emotion")) if form.text("emotion") else "neutral"
    intensity = parse_intensity(form.text("intensity")) if form.text("intensity") else DEFAULT_INTENSITY
    timeline_text = form.text("emotion_timeline")
    try:
        timeline = parse_timeline(timeline_text) if timeline_text else default_timeline(emotion, intensity)
    except ValueError as exc:
        raise _bad("invalid_emotion_timeline", str(exc)) from None
    timings_text = form.text("timings")
    timings = None
    if timings_text:
        try:
            timings = parse_timings(strict_json.loads(timings_text))
        except ValueError as exc:  # bad JSON (or a NaN/huge number), or bad timings
            raise _bad("invalid_timings", str(exc)) from None

    pcm: np.ndarray | None = None
    if audio_bytes is not None:
        if form.text("duration_s"):
            raise _bad("invalid_duration_s", "duration_s is only for clips without audio (the audio sets the length)")
        try:
            pcm = await asyncio.to_thread(decode_audio, audio_bytes, MAX_DURATION_S)
        except AudioError as exc:
            raise _bad(exc.code, str(exc), 413 if exc.code == "audio_too_long" else 400) from None
        duration = len(pcm) / AUDIO_RATE
    else:
        duration = _parse_float(form.text("duration_s"), "duration_s", DEFAULT_SILENT_S, 0.04, MAX_DURATION_S)

    key, source = await prepare_portrait(state, data, pixel_limit(request, state))
    n_frames = n_frames_for(duration, fps)
    if timings is not None:
        pose_source = PoseSource(precomputed=await asyncio.to_thread(poses_from_timings, timings, fps, duration))
    else:
        pose_source = await asyncio.to_thread(PoseSource, pcm, AUDIO_RATE, fps)  # loads the phone decoder

    motions = MotionTimeline(timeline, fps, baseline=baseline)
    encoder: ClipEncoder | None = None
    # Three stages overlap: the next chunk's poses (analysis thread), this chunk's frames
    # (engine worker) and the previous chunk's encode (encoder thread).
    pending: asyncio.Future | None = None
    next_poses: asyncio.Future = asyncio.ensure_future(asyncio.to_thread(pose_source.take, min(CHUNK_FRAMES, n_frames)))
    audio_done = 0
    try:
        with state.cache.held(key):
            for start in range(0, n_frames, CHUNK_FRAMES):
                count = min(CHUNK_FRAMES, n_frames - start)
                poses = await next_poses
                following = min(CHUNK_FRAMES, n_frames - start - count)
                next_poses = asyncio.ensure_future(asyncio.to_thread(pose_source.take, following))
                jobs = [(source, motions.motion(start + i, poses[i])) for i in range(count)]
                frames = await state.worker.render(jobs)
                if encoder is None:
                    h, w = frames[0].shape[:2]
                    encoder = await asyncio.to_thread(ClipEncoder, fmt, fps, w, h, pcm is not None)
                end = start + len(frames)
                piece = np.zeros(0, np.int16)
                if pcm is not None:
                    audio_to = len(pcm) if end >= n_frames else min(len(pcm), int(end / fps * AUDIO_RATE))
                    piece, audio_done = pcm[audio_done:max(audio_done, audio_to)], max(audio_done, audio_to)
                if pending is not None:
                    await pending
                pending = asyncio.ensure_future(asyncio.to_thread(_encode_chunk, encoder, frames, piece))
            if pending is not None:
                await pending
                pending = None
            await next_poses  # take(0): nothing left, but never leave a thread future behind
        assert encoder is not None
        body = await asyncio.to_thread(encoder.finish)
    except BaseException:
        # Never close the encoder under a running encode, nor leave the analysis thread behind.
        await asyncio.gather(*(f for f in (pending, next_poses) if f is not None), return_exceptions=True)
        if encoder is not None:
            await asyncio.to_thread(encoder.abort)
        raise
    latency = (time.perf_counter() - t0) * 1000
    duration_ms = round(n_frames / fps * 1000 if pcm is None else duration * 1000, 1)
    if direct is not None and direct == fmt:
        return web.Response(body=body, headers={
            "Content-Type": MIME[fmt], "X-Latency-Ms": f"{latency:.2f}",
            "X-Frames": str(n_frames), "X-Duration-Ms": f"{duration_ms:g}"})
    store = state.outputs
    name, path = await asyncio.to_thread(store.write, body, fmt)
    info = state.engine.info
    return web.json_response({
        "output_path": str(path), "filename": name, "format": fmt, "mime": MIME[fmt],
        "duration_ms": duration_ms, "frames": n_frames, "fps": fps, "audio": pcm is not None,
        "lip_source": "timings" if timings is not None else ("audio" if pcm is not None else "none"),
        "latency_ms": round(latency, 2), "bytes": len(body),
        "width": encoder.width, "height": encoder.height,
        "emotion": emotion if not timeline_text else None, "intensity": intensity if not timeline_text else None,
        "gpu_used": info.device.startswith("cuda"), "model_version": info.model_version,
    })


def _encode_chunk(encoder: ClipEncoder, frames: list[np.ndarray], pcm: np.ndarray) -> None:
    encoder.add_frames(frames)
    encoder.add_audio(pcm)


def setup_video(app: web.Application) -> None:
    app.router.add_post("/render/video", handle_render_video)


# ---- OpenAPI (merged into GET /openapi.json by streamer/http/openapi.py) ----

def openapi_schemas() -> dict:
    from engine.motion import EMOTIONS

    return {
        "RenderVideoForm": {
            "type": "object", "required": ["source_image"], "additionalProperties": True,
            "properties": {
                "source_image": {"type": "string", "format": "binary", "contentMediaType": "image/*",
                                 "description": "the portrait: JPEG, PNG or WebP with one visible face"},
                "audio": {"type": "string", "format": "binary", "contentMediaType": "audio/*",
                          "description": f"speech (wav, mp3, ogg/opus, m4a, flac; at most "
                                         f"{MAX_DURATION_S:g} s and {MAX_AUDIO_BYTES // 1048576} MB); "
                                         "it sets the clip's length"},
                "emotion": {"type": "string", "enum": list(EMOTIONS), "default": "neutral"},
                "intensity": {"type": "number", "minimum": 0, "maximum": 1, "default": DEFAULT_INTENSITY},
                "emotion_timeline": {"type": "string", "description":
                                     'JSON list of keyframes [{"t_s", "emotion", "intensity"?, '
                                     '"transition_s"?}] (replaces emotion/intensity)'},
                "timings": {"type": "string", "description":
                            'JSON list [{"start_ms", "end_ms", "phoneme"|"viseme", "weight"?}] '
                            "replacing the audio analysis (docs/speech.md)"},
                "fps": {"type": "number", "minimum": 1, "maximum": 60, "default": DEFAULT_FPS},
                "output_format": {"type": "string", "enum": list(CONTAINERS), "default": "mp4"},
                "duration_s": {"type": "number", "minimum": 0.04, "maximum": MAX_DURATION_S,
                               "default": DEFAULT_SILENT_S, "description": "only without audio"},
                "baseline": {"type": "string", "enum": ["neutral", "photo"], "default": "neutral"},
            },
        },
        "RenderVideoResult": {
            "type": "object",
            "required": ["output_path", "filename", "format", "duration_ms", "frames", "fps",
                         "latency_ms", "width", "height"],
            "properties": {
                "output_path": {"type": "string"}, "filename": {"type": "string"},
                "format": {"type": "string", "enum": list(CONTAINERS)}, "mime": {"type": "string"},
                "duration_ms": {"type": "number", "minimum": 0}, "frames": {"type": "integer", "minimum": 1},
                "fps": {"type": "number"}, "audio": {"type": "boolean"},
                "lip_source": {"type": "string", "enum": ["audio", "timings", "none"]},
                "latency_ms": {"type": "number", "minimum": 0}, "bytes": {"type": "integer"},
                "width": {"type": "integer"}, "height": {"type": "integer"},
                "emotion": {"type": ["string", "null"]}, "intensity": {"type": ["number", "null"]},
                "gpu_used": {"type": "boolean"}, "model_version": {"type": "string"},
            },
        },
    }


def openapi_paths(upload_errors: dict) -> dict:
    return {"/render/video": {"post": {
        "operationId": "renderVideo", "tags": ["render"],
        "summary": "Render a lip-synced clip (mp4: H.264 + AAC, webm: VP8 + Opus)",
        "description": "JSON by default (the clip is stored under output/); with Accept: video/mp4 "
                       "or video/webm the clip's bytes. Errors besides the upload ones: 400 "
                       "invalid_audio, invalid_fps, invalid_duration_s, invalid_output_format, "
                       "invalid_emotion_timeline, invalid_timings; 413 audio_too_large, audio_too_long.",
        "requestBody": {"required": True, "content": {"multipart/form-data": {
            "schema": {"$ref": "#/components/schemas/RenderVideoForm"},
            "encoding": {"source_image": {"contentType": "image/*"}, "audio": {"contentType": "audio/*"}}}}},
        "responses": {
            "200": {"description": "the clip",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/RenderVideoResult"}},
                                **{m: {"schema": {"type": "string", "format": "binary"}} for m in MIME.values()}}},
            **upload_errors}}}}

"""The seed's REST API: /health, /render, /render/batch, /output/{filename}, /metrics.

Responses keep the seed's JSON fields exactly. Engine work goes through state.worker
(bounded queue -> 503 + Retry-After); decoding, encoding and file writes run in threads.
"""
from __future__ import annotations

import asyncio
import time
from importlib import metadata

import numpy as np
from aiohttp import web

from engine.motion import BASELINES, EMOTIONS, Motion, validate_unit

from streamer.access.control import pixel_limit, upload_limit
from streamer.app_state import STATE_KEY, AppState
from streamer.errors import ApiError
from streamer.http.budget import check_budget
from streamer.http.forms import Form, read_form
from streamer.http.negotiation import best_of, excluded
from streamer.http.outputs import mime_of
from streamer.http.ranges import check_range
from streamer.http.portraits import prepare_portrait
from streamer.imaging import FORMATS, MIME_TO_FORMAT, encode_image, format_named
from streamer import strict_json
from streamer.strict_json import json_response
from streamer.tts import tts_available

DEFAULT_INTENSITY = 0.7
MAX_BATCH = 16


def package_version() -> str:
    try:
        return metadata.version("liveportrait-avatar")
    except metadata.PackageNotFoundError:
        return "0.0.0+local"


# ---- field parsing (every bad value is a 400 with a message saying what is valid) ----

def parse_emotion(value: str | None) -> str:
    if value is None or value == "":
        raise ApiError(400, "missing_field", "the field 'emotion' is required; valid: " + ", ".join(EMOTIONS))
    name = value.strip().lower()
    if name not in EMOTIONS:
        raise ApiError(400, "invalid_emotion",
                       f"unknown emotion {value[:40]!r}; valid: {', '.join(EMOTIONS)}")
    return name


def parse_intensity(value: str | None) -> float:
    if value is None or value == "":
        return DEFAULT_INTENSITY
    try:
        return validate_unit("intensity", value)
    except ValueError as exc:
        raise ApiError(400, "invalid_intensity", str(exc)) from None


def parse_format(value: str | None) -> str:
    if value is None or value == "":
        return "png"
    fmt = format_named(value)
    if fmt is None:
        valid = ", ".join(f.extension for f in FORMATS.values())  # the names files end in
        raise ApiError(400, "invalid_format",
                       f"unknown output_format {value[:40]!r}; valid: {valid}")
    return fmt


def parse_mode(value: str | None) -> str:
    if value is None or value == "":
        return "crop"
    if value not in ("crop", "full"):
        raise ApiError(400, "invalid_mode", "mode must be 'crop' (512x512 face) or 'full' (whole photo)")
    return value


def parse_baseline(value: str | None) -> str:
    """The face with no emotion: "neutral" (absolute expressions, default) or "photo"."""
    if value is None or value == "":
        return "neutral"
    name = value.strip().lower()
    if name not in BASELINES:
        raise ApiError(400, "invalid_baseline",
                       f"unknown baseline {value[:40]!r}; valid: {', '.join(BASELINES)}")
    return name


def parse_emotions(form: Form) -> list[str]:
    """Repeated fields, a JSON array, or comma-separated; all three may be mixed."""
    raw = form.texts("emotions") + form.texts("emotions[]")
    if not raw:
        raise ApiError(400, "missing_field", "the field 'emotions' is required; valid: " + ", ".join(EMOTIONS))
    names: list[str] = []
    for value in raw:
        if value.startswith("["):
            try:
                items = strict_json.loads(value)
            except ValueError:  # bad JSON, or a NaN/huge number (strict_json)
                raise ApiError(400, "invalid_emotion", "emotions is not a valid JSON array; valid emotions: "
                               + ", ".join(EMOTIONS)) from None
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ApiError(400, "invalid_emotion", "emotions must be an array of strings; valid: "
                               + ", ".join(EMOTIONS))
            names.extend(items)
        else:
            names.extend(v for v in value.split(",") if v.strip())
    if not names:
        raise ApiError(400, "invalid_emotion", "emotions is empty; valid: " + ", ".join(EMOTIONS))
    if len(names) > MAX_BATCH:
        raise ApiError(400, "too_many_emotions", f"at most {MAX_BATCH} emotions per batch")
    return [parse_emotion(n) for n in names]


_JSON = "application/json"
_OFFERS = [_JSON] + [f.mime for f in FORMATS.values()]  # JSON first: it wins ties (*/*)


def not_acceptable(mime_list: str) -> ApiError:
    return ApiError(406, "not_acceptable", f"the Accept header rules out every type this route "
                    f"can answer with ({mime_list})")


def wanted_image_format(request: web.Request) -> str | None:
    """The image format the Accept header prefers (RFC 9110: q-values, q=0 = never), or None
    for JSON. A header that accepts nothing we make gets JSON, unless it rules JSON out too."""
    header = request.headers.get("Accept")
    choice = best_of(header, _OFFERS)
    if choice is None:
        if excluded(header, _JSON):
            raise not_acceptable(", ".join(_OFFERS))
        return None
    return MIME_TO_FORMAT.get(choice)


# ---- handlers ----

def _result(state: AppState, emotion: str, intensity: float, name: str, path: str,
            size: tuple[int, int], latency_ms: float) -> dict:
    info = state.engine.info
    return {
        "output_path": path,
        "filename": name,
        "emotion": emotion,
        "intensity": intensity,
        "latency_ms": round(latency_ms, 2),
        "gpu_used": info.device.startswith("cuda"),
        "model_version": info.model_version,
        "width": size[0],
        "height": size[1],
    }


async def _read_upload(request: web.Request, state: AppState) -> Form:
    return await read_form(request, upload_limit(request, state), ("source_image",),
                           state.config.body_timeout_s)


async def _check_budget(state: AppState, data: bytes, mode: str, frames: int) -> None:
    """413 request_too_costly before any engine work (reads the image header: off the loop)."""
    config = state.config
    await asyncio.to_thread(check_budget, data, mode, frames, config.max_source_pixels,
                            config.max_request_pixels)


async def handle_render(request: web.Request) -> web.Response:
    t0 = time.perf_counter()
    state = request.app[STATE_KEY]
    form = await _read_upload(request, state)
    data = form.require_file("source_image")
    emotion = parse_emotion(form.text("emotion"))
    intensity = parse_intensity(form.text("intensity"))
    fmt = parse_format(form.text("output_format"))
    mode = parse_mode(form.text("mode"))
    baseline = parse_baseline(form.text("baseline"))
    direct = wanted_image_format(request)
    await _check_budget(state, data, mode, 1)

    key, source = await prepare_portrait(state, data, pixel_limit(request, state))
    with state.cache.held(key):  # a session closing meanwhile must not release it under us
        [frame] = await state.worker.render([(source, Motion.emotion(emotion, intensity, baseline))], mode=mode)
    if direct is not None:
        body = await asyncio.to_thread(encode_image, frame, direct)
        latency = (time.perf_counter() - t0) * 1000
        return web.Response(body=body, headers={
            "Content-Type": FORMATS[direct].mime,
            "X-Latency-Ms": f"{latency:.2f}",
            "X-Emotion": emotion,
            "X-Intensity": f"{intensity:g}",
        })
    store = state.outputs
    name, path = await asyncio.to_thread(lambda: store.write(encode_image(frame, fmt), fmt))
    latency = (time.perf_counter() - t0) * 1000
    return json_response(_result(state, emotion, intensity, name, str(path), _size(frame), latency))


async def handle_render_batch(request: web.Request) -> web.Response:
    t0 = time.perf_counter()
    state = request.app[STATE_KEY]
    form = await _read_upload(request, state)
    data = form.require_file("source_image")
    emotions = parse_emotions(form)
    intensity = parse_intensity(form.text("intensity"))
    fmt = parse_format(form.text("output_format"))
    mode = parse_mode(form.text("mode"))
    baseline = parse_baseline(form.text("baseline"))

    await _check_budget(state, data, mode, len(emotions))

    key, source = await prepare_portrait(state, data, pixel_limit(request, state))  # once for the whole batch
    store = state.outputs
    saved: list[tuple[str, tuple[int, int], str, str]] = []
    with state.cache.held(key):
        for e in emotions:
            # One engine call per frame: a session tick can run between two of them, and only
            # one full-size frame is in memory at a time (encoded and written, then dropped).
            [frame] = await state.worker.render([(source, Motion.emotion(e, intensity, baseline))],
                                                mode=mode)
            name, path = await asyncio.to_thread(lambda f=frame: store.write(encode_image(f, fmt), fmt))
            saved.append((e, _size(frame), name, str(path)))
            del frame
    latency = (time.perf_counter() - t0) * 1000
    return json_response({"results": [
        _result(state, e, intensity, name, path, shape, latency) for e, shape, name, path in saved
    ]})


def _size(frame: np.ndarray) -> tuple[int, int]:
    return int(frame.shape[1]), int(frame.shape[0])


async def handle_get_output(request: web.Request) -> web.StreamResponse:
    state = request.app[STATE_KEY]
    name = request.match_info["filename"]
    path = state.outputs.resolve(name)
    if path is None:
        raise ApiError(404, "not_found", "no such output (it may have expired or been deleted)")
    mime = mime_of(name)
    if excluded(request.headers.get("Accept"), mime):
        raise not_acceptable(mime)
    check_range(request, path)
    return web.FileResponse(path, headers={"Content-Type": mime,
                                           "Cache-Control": "private, max-age=60"})


async def handle_delete_output(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    name = request.match_info["filename"]
    deleted = await asyncio.to_thread(state.outputs.delete, name)
    if not deleted:
        raise ApiError(404, "not_found", "no such output (it may have expired or been deleted)")
    return json_response({"deleted": True, "filename": name})


async def handle_health(request: web.Request) -> web.Response:
    state = request.app[STATE_KEY]
    gpu = state.gpu
    info = state.engine.info
    return json_response({
        "status": "healthy",
        "gpu_available": gpu.available,
        "gpu_name": gpu.name,
        "cuda_version": gpu.cuda_version,
        "model_loaded": True,  # create_app is only ever given a loaded engine
        "engine": info.name,
        "device": info.device,
        "model_version": info.model_version,
        "version": package_version(),
        "sessions": state.sessions.health(),  # measured load and headroom (sessions/headroom.py)
        "speech": {"tts": tts_available()},  # POST /sessions/{id}/say works (espeak-ng)
    })


async def handle_metrics(request: web.Request) -> web.Response:
    body, ctype = request.app[STATE_KEY].metrics.exposition()
    return web.Response(body=body, headers={"Content-Type": ctype})


def setup_rest(app: web.Application) -> None:
    app.router.add_get("/health", handle_health)
    app.router.add_post("/render", handle_render)
    app.router.add_post("/render/batch", handle_render_batch)
    app.router.add_get("/output/{filename}", handle_get_output)
    app.router.add_delete("/output/{filename}", handle_delete_output)
    app.router.add_get("/metrics", handle_metrics)

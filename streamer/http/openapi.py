"""The OpenAPI 3.1 document of every REST route, served at GET /openapi.json.

Built from the same constants the handlers validate with (EMOTIONS, CONTROL_RANGES, the
form limits), so a changed range shows up here without a second edit. tests/test_openapi.py
walks app.router against ``paths`` and fails when a route and the document disagree.
HEAD is not listed: aiohttp answers it for every GET route (same headers, no body).
"""
from __future__ import annotations

from typing import Any

from aiohttp import web

from engine.motion import BASELINES, CONTROL_RANGES, EMOTIONS

from streamer.app_state import AppState
from streamer.config import ServerConfig
from streamer.http.rest import DEFAULT_INTENSITY, MAX_BATCH, package_version
from streamer.http.video import openapi_paths as video_openapi_paths
from streamer.http.video import openapi_schemas as video_openapi_schemas
from streamer.http.web_routes import ASSET_DIRS
from streamer.imaging import ALIASES, FORMATS
from streamer.routes import METERED, METRICS_PATH, OPEN_PATHS
from streamer.strict_json import dumps
from streamer.sessions.routes import CODECS

OPENAPI_PATH = "/openapi.json"

Schema = dict[str, Any]

_ERROR_CODES_DOC = (
    "400 missing_field, invalid_emotion, invalid_intensity, invalid_format, invalid_mode, "
    "invalid_baseline, invalid_field, too_many_emotions, empty_file, bad_request; 404 not_found; "
    "405 method_not_allowed; 406 not_acceptable; 408 body_timeout; 413 file_too_large, "
    "image_too_large, field_too_large, payload_too_large, request_too_costly; "
    "415 unsupported_media_type; 416 range_not_satisfiable; 421 host_not_allowed; "
    "422 invalid_image, no_face; 429 too_many_sessions; 503 busy, server_busy; 500 internal_error; "
    "access control (docs/security.md): 401 unauthorized, 403 forbidden, origin_not_allowed, "
    "429 rate_limited")


def _ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def _json(schema: Schema, description: str, headers: dict | None = None) -> Schema:
    out: Schema = {"description": description, "content": {"application/json": {"schema": schema}}}
    if headers:
        out["headers"] = headers
    return out


def _error(description: str, retry_after: bool = False) -> Schema:
    headers = {"Retry-After": {"$ref": "#/components/headers/RetryAfter"}} if retry_after else None
    return _json(_ref("Error"), description, headers)


def _binary(media_types: tuple[str, ...], description: str) -> Schema:
    return {"description": description,
            "content": {m: {"schema": {"type": "string", "format": "binary"}} for m in media_types}}


def _links(param: str, expression: str, operation_ids: tuple[str, ...]) -> Schema:
    """OpenAPI links: where a returned id can be used next (stateful fuzzers follow them)."""
    return {op[0].upper() + op[1:]: {"operationId": op, "parameters": {param: expression}}
            for op in operation_ids}


def _path_param(name: str, schema: Schema, description: str, example: str | None = None) -> Schema:
    out = {"name": name, "in": "path", "required": True, "schema": schema,
           "description": description}
    if example is not None:
        out["example"] = example
    return out


# ---- component schemas ----

def _components(config: ServerConfig) -> Schema:
    unit = {"type": "number", "minimum": 0, "maximum": 1}
    emotion_weights = {"type": "object", "required": list(EMOTIONS), "additionalProperties": False,
                       "properties": {e: unit for e in EMOTIONS}}
    controls = {"type": "object", "required": list(CONTROL_RANGES), "additionalProperties": False,
                "properties": {k: {"type": "number", "minimum": r.low, "maximum": r.high,
                                   "description": r.meaning}
                               for k, r in CONTROL_RANGES.items()}}
    motion = {"type": "object", "required": ["emotions", "controls"],
              "properties": {"emotions": emotion_weights, "controls": controls}}
    formats = sorted(set(FORMATS) | set(ALIASES))
    limits = config.sessions
    return {
        "securitySchemes": {
            "bearerAuth": {"type": "http", "scheme": "bearer",
                           "description": "API key (when the server has keys: --api-key / "
                                          "LPA_API_KEYS), or a session token for its own "
                                          "session's GET/DELETE and WebSocket"},
        },
        "headers": {
            "RetryAfter": {"description": "seconds to wait before retrying",
                           "schema": {"type": "string", "pattern": "^[0-9]+$"}},
        },
        "schemas": {
            "Error": {
                "type": "object", "required": ["error"], "additionalProperties": False,
                "description": "Every HTTP error. Codes: " + _ERROR_CODES_DOC,
                "properties": {"error": {
                    "type": "object", "required": ["status", "code", "message"],
                    "additionalProperties": False,
                    "properties": {"status": {"type": "integer", "minimum": 400, "maximum": 599},
                                   "code": {"type": "string", "pattern": "^[a-z_]+$"},
                                   "message": {"type": "string"}}}},
            },
            "Health": {
                "type": "object",
                "required": ["status", "gpu_available", "gpu_name", "cuda_version", "model_loaded",
                             "engine", "device", "model_version", "version"],
                "properties": {
                    "status": {"type": "string", "enum": ["healthy"]},
                    "gpu_available": {"type": "boolean"},
                    "gpu_name": {"type": ["string", "null"]},
                    "cuda_version": {"type": ["string", "null"]},
                    "model_loaded": {"type": "boolean"},
                    "engine": {"type": "string"},
                    "device": {"type": "string"},
                    "model_version": {"type": "string"},
                    "version": {"type": "string"},
                    "sessions": {"type": "object", "description":
                                 "live sessions and their measured load (docs/protocol.md): active, "
                                 "measured, max_sessions, admitting, load, headroom, max_load, "
                                 "fps_factor, dropped_share, min_rate_fps"},
                    "speech": {"type": "object", "required": ["tts"],
                               "properties": {"tts": {
                                   "type": "boolean",
                                   "description": "espeak-ng is installed: POST "
                                                  "/sessions/{session_id}/say works"}}},
                },
            },
            "RenderResult": {
                "type": "object",
                "required": ["output_path", "filename", "emotion", "intensity", "latency_ms",
                             "gpu_used", "model_version", "width", "height"],
                "properties": {
                    "output_path": {"type": "string"},
                    "filename": {"type": "string", "pattern": r"^[0-9a-f]{32}\.(png|jpg|webp)$"},
                    "emotion": {"type": "string", "enum": list(EMOTIONS)},
                    "intensity": unit,
                    "latency_ms": {"type": "number", "minimum": 0},
                    "gpu_used": {"type": "boolean"},
                    "model_version": {"type": "string"},
                    "width": {"type": "integer", "minimum": 1},
                    "height": {"type": "integer", "minimum": 1},
                },
            },
            "RenderBatchResult": {
                "type": "object", "required": ["results"],
                "properties": {"results": {"type": "array", "items": _ref("RenderResult"),
                                           "minItems": 1, "maxItems": MAX_BATCH}},
            },
            "RenderForm": _render_form(formats, batch=False),
            "RenderBatchForm": _render_form(formats, batch=True),
            "SessionForm": {
                # Unknown fields are ignored (forward compatible), as on /render.
                "type": "object", "required": ["source_image"], "additionalProperties": True,
                "properties": {
                    "source_image": _image_field(),
                    "fps": {"type": "integer", "minimum": 1, "maximum": 60,
                            "default": limits.default_fps},
                    "size": {"type": "integer", "minimum": 128, "maximum": 1024, "multipleOf": 16,
                             "default": limits.default_size},
                    "codec": {"type": "string", "enum": list(CODECS), "default": "vp8"},
                    "idle_motion": {"type": "string", "default": "true",
                                    "enum": ["true", "false", "1", "0", "on", "off", "yes", "no"]},
                    "baseline": _baseline_field(),
                },
            },
            "SessionCreated": {
                "type": "object",
                "required": ["session_id", "ws_url", "ice_servers", "expires_in", "fps", "size",
                             "codec"],
                "properties": {
                    "session_id": {"type": "string", "minLength": 1},
                    "ws_url": {"type": "string", "pattern": "^wss?://"},
                    "ice_servers": {"type": "array", "items": {
                        "type": "object", "required": ["urls"],
                        "properties": {"urls": {"type": "array", "items": {"type": "string"}}}}},
                    "expires_in": {"type": "number", "minimum": 0},
                    "fps": {"type": "integer", "minimum": 1, "maximum": 60},
                    "size": {"type": "integer", "minimum": 128, "maximum": 1024},
                    "codec": {"type": "string", "enum": list(CODECS)},
                    "baseline": {"type": "string", "enum": list(BASELINES)},
                },
            },
            "SessionState": {
                "type": "object",
                "required": ["session_id", "fps", "size", "codec", "idle_motion", "viewers",
                             "ws_clients", "age_s", "frames_rendered", "motion", "target"],
                "properties": {
                    "session_id": {"type": "string"},
                    "fps": {"type": "integer", "minimum": 1, "maximum": 60},
                    "size": {"type": "integer", "minimum": 128, "maximum": 1024},
                    "codec": {"type": "string", "enum": list(CODECS)},
                    "idle_motion": {"type": "boolean"},
                    "baseline": {"type": "string", "enum": list(BASELINES)},
                    "viewers": {"type": "integer", "minimum": 0},
                    "ws_clients": {"type": "integer", "minimum": 0},
                    "age_s": {"type": "number", "minimum": 0},
                    "frames_rendered": {"type": "integer", "minimum": 0},
                    "motion": motion,
                    "target": motion,
                },
            },
            "SessionList": {
                "type": "object", "required": ["sessions"],
                "properties": {"sessions": {"type": "array", "items": _ref("SessionState")}},
            },
            "SessionDeleted": {
                "type": "object", "required": ["deleted", "session_id"],
                "properties": {"deleted": {"const": True}, "session_id": {"type": "string"}},
            },
            "SpeechForm": {
                "type": "object", "required": ["audio"], "additionalProperties": True,
                "properties": {
                    "audio": {"type": "string", "format": "binary",
                              "description": "an audio file FFmpeg reads: wav, mp3, ogg/opus, "
                                             "m4a, flac, ..."},
                    "id": {"type": "string", "maxLength": 200,
                           "description": "the utterance id in speech_started/speech_ended"},
                    "timings": {"type": "string",
                                "description": "JSON list of {start_ms, end_ms, phoneme|viseme, "
                                               "weight?}: the client's timings replace the "
                                               "audio analysis (docs/protocol.md, Speech)"},
                },
            },
            "SayForm": {
                "type": "object", "required": ["text"], "additionalProperties": True,
                "properties": {
                    "text": {"type": "string", "minLength": 1, "maxLength": 500,
                             "description": "the words to say (no control characters)"},
                    "id": {"type": "string", "maxLength": 200,
                           "description": "the utterance id in speech_started/speech_ended"},
                },
            },
            "SpeechAccepted": {
                "type": "object", "required": ["id", "duration_ms", "queued_ms"],
                "properties": {"id": {"type": "string"},
                               "duration_ms": {"type": "integer", "minimum": 0},
                               "queued_ms": {"type": "integer", "minimum": 0}},
            },
            "OutputDeleted": {
                "type": "object", "required": ["deleted", "filename"],
                "properties": {"deleted": {"const": True}, "filename": {"type": "string"}},
            },
            "SampleList": {
                "type": "object", "required": ["samples"],
                "properties": {"samples": {"type": "array", "items": {"type": "string"}}},
            },
        },
    }


def _image_field() -> Schema:
    return {"type": "string", "format": "binary", "contentMediaType": "image/*",
            "description": "the portrait: JPEG, PNG or WebP with one visible face"}


def _render_form(formats: list[str], batch: bool) -> Schema:
    # Unknown fields are ignored (forward compatible): additionalProperties stays true.
    props: Schema = {"source_image": _image_field()}
    if batch:
        props["emotions"] = {
            "type": "array", "minItems": 1, "maxItems": MAX_BATCH,
            "items": {"type": "string", "enum": list(EMOTIONS)},
            "description": "repeated fields; a single field holding a JSON array or a "
                           "comma-separated list works too (so does the name 'emotions[]')"}
    else:
        props["emotion"] = {"type": "string", "enum": list(EMOTIONS)}
    props["intensity"] = {"type": "number", "minimum": 0, "maximum": 1,
                          "default": DEFAULT_INTENSITY}
    props["output_format"] = {"type": "string", "enum": formats, "default": "png"}
    props["mode"] = {"type": "string", "enum": ["crop", "full"], "default": "crop",
                     "description": "crop: the square face crop; full: the whole photo"}
    props["baseline"] = _baseline_field()
    return {"type": "object", "properties": props, "additionalProperties": True,
            "required": ["source_image", "emotions" if batch else "emotion"]}


def _baseline_field() -> Schema:
    return {"type": "string", "enum": list(BASELINES), "default": "neutral",
            "description": "neutral: expressions are absolute (the photo's own smile, open mouth "
                           "or raised brows are removed first); photo: emotions are added to the "
                           "face as photographed"}


# ---- operations ----

def _upload_errors() -> Schema:
    """What every multipart upload can answer besides success."""
    return {
        "400": _error("a field is missing or invalid (see the error code)"),
        "408": _error("the body did not arrive within the server's body deadline (body_timeout)"),
        "413": _error("the upload, a field or the image is too large, or the request asks for "
                      "more output pixels x frames than one request may (request_too_costly)"),
        "415": _error("the body is not multipart/form-data (or urlencoded)"),
        "422": _error("not a decodable image (invalid_image) or no face found (no_face)"),
        "503": _error("the engine queue is full", retry_after=True),
        "500": _error("internal error (never a traceback)"),
    }


def _multipart(schema_name: str) -> Schema:
    return {"required": True, "content": {
        "multipart/form-data": {"schema": _ref(schema_name),
                                "encoding": {"source_image": {"contentType": "image/*"}}}}}


def _server_error() -> Schema:
    return {"500": _error("internal error (never a traceback)")}


def _paths(config: ServerConfig) -> Schema:
    image_types = tuple(f.mime for f in FORMATS.values())
    not_found = {"404": _error("no such resource")}
    session_id = _path_param("session_id", {"type": "string", "minLength": 1},
                             "the id POST /sessions returned")
    filename = _path_param("filename", {"type": "string", "minLength": 1},
                           "a filename a render returned (32 hex digits and an extension)")
    return {
        "/health": {"get": {
            "operationId": "health", "tags": ["service"], "security": [{}],
            "summary": "Liveness and engine facts (always open)",
            "responses": {"200": _json(_ref("Health"), "the server is up"), **_server_error()}}},
        "/render": {"post": {
            "operationId": "render", "tags": ["render"],
            "summary": "Render one emotion from one portrait",
            "description": "JSON by default; with Accept: image/png, image/jpeg or image/webp "
                           "the image bytes themselves (headers X-Latency-Ms, X-Emotion, "
                           "X-Intensity). Accept q-values are honoured (q=0 excludes a type).",
            "requestBody": _multipart("RenderForm"),
            "responses": {
                "200": {"description": "the rendered frame, saved under output/",
                        "content": {"application/json": {"schema": _ref("RenderResult")},
                                    **{m: {"schema": {"type": "string", "format": "binary"}}
                                       for m in image_types}},
                        "links": _links("filename", "$response.body#/filename",
                                        ("getOutput", "deleteOutput"))},
                "406": _error("the Accept header rules out JSON and every image type"),
                **_upload_errors()}}},
        "/render/batch": {"post": {
            "operationId": "renderBatch", "tags": ["render"],
            "summary": f"Render up to {MAX_BATCH} emotions of one portrait (one engine call per frame)",
            "requestBody": _multipart("RenderBatchForm"),
            "responses": {"200": _json(_ref("RenderBatchResult"), "one result per emotion"),
                          **_upload_errors()}}},
        "/output/{filename}": {
            "parameters": [filename],
            "get": {"operationId": "getOutput", "tags": ["render"],
                    "summary": "A rendered image (until it expires)",
                    "responses": {"200": _binary(image_types, "the image"),
                                  "206": _binary(image_types, "the part a Range header asked for"),
                                  "304": {"description": "not modified (conditional request)"},
                                  "406": _error("the Accept header excludes this image's type (q=0)"),
                                  "416": _error("the Range header is outside the file"),
                                  **not_found, **_server_error()}},
            "delete": {"operationId": "deleteOutput", "tags": ["render"],
                       "summary": "Delete a rendered image",
                       "responses": {"200": _json(_ref("OutputDeleted"), "deleted"),
                                     **not_found, **_server_error()}}},
        "/metrics": {"get": {
            "operationId": "metrics", "tags": ["service"],
            "summary": "Prometheus metrics (text exposition format)",
            "responses": {"200": {"description": "metrics",
                                  "content": {"text/plain": {"schema": {"type": "string"}}}},
                          **_server_error()}}},
        "/sessions": {
            "post": {"operationId": "createSession", "tags": ["sessions"],
                     "summary": "Create a real-time session for one portrait",
                     "requestBody": _multipart("SessionForm"),
                     "responses": {
                         "201": {**_json(_ref("SessionCreated"), "the session; open ws_url next"),
                                 "links": _links("session_id", "$response.body#/session_id",
                                                 ("getSession", "deleteSession",
                                                  "sessionSocket", "sessionSpeech", "sessionSay"))},
                         **_upload_errors(),
                         "429": _error("the server runs its maximum number of sessions "
                                       "(too_many_sessions)", retry_after=True),
                         "503": _error("the running sessions leave no measured headroom "
                                       "(server_busy)", retry_after=True)}},
            "get": {"operationId": "listSessions", "tags": ["sessions"],
                    "summary": "All live sessions",
                    "responses": {"200": _json(_ref("SessionList"), "the sessions"),
                                  **_server_error()}}},
        "/sessions/{session_id}": {
            "parameters": [session_id],
            "get": {"operationId": "getSession", "tags": ["sessions"],
                    "summary": "One session's state",
                    "responses": {"200": _json(_ref("SessionState"), "the state"),
                                  **not_found, **_server_error()}},
            "delete": {"operationId": "deleteSession", "tags": ["sessions"],
                       "summary": "Close a session (sockets get a closed event, code 4000)",
                       "responses": {"200": _json(_ref("SessionDeleted"), "closed"),
                                     **not_found, **_server_error()}}},
        "/sessions/{session_id}/ws": {
            "parameters": [session_id],
            "get": {"operationId": "sessionSocket", "tags": ["sessions"],
                    "summary": "The session WebSocket (protocol: docs/protocol.md)",
                    "responses": {
                        "101": {"description": "switching to the WebSocket protocol"},
                        "400": _error("not a WebSocket upgrade request"),
                        **not_found, **_server_error()}}},
        "/sessions/{session_id}/speech": {
            "parameters": [session_id],
            "post": {"operationId": "sessionSpeech", "tags": ["sessions"],
                     "summary": "Queue an audio file for the session to say (lip-synced)",
                     "description": "Decoded with FFmpeg and queued like streamed speech: "
                                    "the session's sockets get speech_started and speech_ended "
                                    "(docs/protocol.md, Speech).",
                     "requestBody": {"required": True, "content": {"multipart/form-data": {
                         "schema": _ref("SpeechForm"),
                         "encoding": {"audio": {"contentType": "audio/*"}}}}},
                     "responses": {
                         "202": _json(_ref("SpeechAccepted"), "queued"),
                         "400": _error("not audio FFmpeg can read (invalid_audio) or a bad field"),
                         **not_found,
                         "413": _error("the upload is too large, or the audio is longer than "
                                       "the speech queue holds (audio_too_long)"),
                         "415": _error("the body is not multipart/form-data"),
                         "429": _error("the session's speech queue is full "
                                       "(speech_buffer_full, speech_queue_full)",
                                       retry_after=True),
                         **_server_error()}}},
        "/sessions/{session_id}/say": {
            "parameters": [session_id],
            "post": {"operationId": "sessionSay", "tags": ["sessions"],
                     "summary": "Say typed text with espeak-ng (a robot voice for demos)",
                     "description": "Only where espeak-ng is installed (GET /health: "
                                    "speech.tts). The text becomes speech on the server and is "
                                    "queued like POST /sessions/{session_id}/speech, with the "
                                    "same events.",
                     "requestBody": {"required": True, "content": {
                         "multipart/form-data": {"schema": _ref("SayForm")},
                         "application/x-www-form-urlencoded": {"schema": _ref("SayForm")}}},
                     "responses": {
                         "202": _json(_ref("SpeechAccepted"), "queued"),
                         "400": _error("no text, text over 500 characters or with control "
                                       "characters, or a bad id"),
                         **not_found,
                         "413": _error("the body is larger than the upload limit"),
                         "415": _error("the body is not a form"),
                         "429": _error("the speech queue is full, or the server already runs "
                                       "its espeak-ng processes (tts_busy)", retry_after=True),
                         "501": _error("espeak-ng is not installed here (tts_unavailable)"),
                         "502": _error("espeak-ng failed (tts_failed)"),
                         "504": _error("espeak-ng took too long (tts_timeout)"),
                         **_server_error()}}},
        "/samples": {"get": {
            "operationId": "listSamples", "tags": ["demo"],
            "summary": "The sample portraits installed here",
            "responses": {"200": _json(_ref("SampleList"), "sample names"), **_server_error()}}},
        "/samples/{name}": {"get": {
            "operationId": "getSample", "tags": ["demo"],
            "summary": "One sample portrait",
            "parameters": [_path_param("name", {"type": "string", "minLength": 1},
                                       "a name GET /samples lists", "grace_hopper")],
            "responses": {"200": _binary(("image/jpeg", "image/png", "image/webp",
                                          "application/octet-stream"), "the photo"),
                          **not_found, **_server_error()}}},
        "/": {"get": {
            "operationId": "demoPage", "tags": ["demo"], "security": [{}],
            "summary": "The demo page",
            "responses": {"200": {"description": "HTML",
                                  "content": {"text/html": {"schema": {"type": "string"}}}},
                          "304": {"description": "not modified"}, **not_found, **_server_error()}}},
        "/{name}": {"get": {
            "operationId": "demoTopFile", "tags": ["demo"], "security": [{}],
            "summary": "A top-level file of the demo page",
            "parameters": [_path_param("name", {"type": "string", "enum": [
                "index.html", "favicon.svg", "favicon.ico", "site.webmanifest"]},
                "one of the page's top-level files")],
            "responses": {"200": _binary(("text/html", "image/svg+xml", "image/x-icon",
                                          "application/manifest+json"), "the file"),
                          "304": {"description": "not modified"},
                          "404": _error("the file is not part of this build"), **_server_error()}}},
        "/{folder}/{name}": {"get": {
            "operationId": "demoAsset", "tags": ["demo"], "security": [{}],
            "summary": "A script, style sheet or image of the demo page",
            "parameters": [
                _path_param("folder", {"type": "string", "enum": list(ASSET_DIRS)}, "asset folder"),
                _path_param("name", {"type": "string", "minLength": 1}, "file name",
                            "app.js")],
            "responses": {"200": _binary(("text/javascript", "text/css", "image/svg+xml",
                                          "image/png"), "the file"),
                          "304": {"description": "not modified"},
                          "404": _error("no such file"), **_server_error()}}},
        OPENAPI_PATH: {"get": {
            "operationId": "openapi", "tags": ["service"], "security": [{}],
            "summary": "This document",
            "responses": {"200": {"description": "OpenAPI 3.1",
                                  "content": {"application/json": {"schema": {"type": "object"}}}},
                          **_server_error()}}},
    }


def build_document(config: ServerConfig, server_url: str | None = None) -> Schema:
    doc: Schema = {
        "openapi": "3.1.0",
        "info": {
            "title": "liveportrait-avatar",
            "version": package_version(),
            "description": "Render one portrait photo with emotions, and stream it in real time. "
                           "Real-time messages (WebSocket, WebRTC) are described in "
                           "docs/protocol.md. Every error body is {\"error\": {\"code\", "
                           "\"message\"}}. Any route answers 405 method_not_allowed (with Allow) "
                           "to a method it does not list, and unknown paths answer 404.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "paths": _paths(config),
        "components": _components(config),
        # Without keys configured no key is needed (an empty requirement).
        "security": [{"bearerAuth": []}] if config.access.api_keys else [{}, {"bearerAuth": []}],
    }
    # POST /render/video documents itself (streamer/http/video.py).
    doc["paths"].update(video_openapi_paths(_upload_errors()))
    doc["components"]["schemas"].update(video_openapi_schemas())
    _add_access_responses(doc["paths"], config)
    if server_url:
        doc["servers"] = [{"url": server_url}]
    return doc


def _add_access_responses(paths: Schema, config: ServerConfig) -> None:
    """401/403/429 from the access layer (access/control.py, access/cors.py) on each operation,
    by the route table's flags."""
    unauthorized = _error("no valid API key or session token (unauthorized); with "
                          "WWW-Authenticate: Bearer")
    unauthorized["headers"] = {"WWW-Authenticate": {"schema": {"type": "string"}}}
    forbidden = _error("a session token outside its own session (forbidden), or a foreign "
                       "Origin not in --cors-origin (origin_not_allowed)")
    for path, item in paths.items():
        for method, op in item.items():
            if method == "parameters" or not isinstance(op, dict) or "responses" not in op:
                continue
            responses = op["responses"]
            open_route = path in OPEN_PATHS or (path == METRICS_PATH and not config.access.metrics_auth)
            if open_route:
                op["security"] = [{}]
            else:
                responses.setdefault("401", unauthorized)
            responses.setdefault("403", forbidden)
            if (method.upper(), path) in METERED:
                limited = _error("too many render requests for this key (rate_limited, token "
                                 "bucket) or too many sessions (too_many_sessions)", retry_after=True)
                responses["429"] = limited


def setup_openapi(app: web.Application, state: AppState) -> None:
    """Serve the document at GET /openapi.json (built once; it only depends on the config)."""
    body = dumps(build_document(state.config)).encode("utf-8")

    async def handle(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type="application/json",
                            headers={"Cache-Control": "no-cache"})

    app.router.add_get(OPENAPI_PATH, handle)

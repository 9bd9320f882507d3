"""Reading multipart uploads with hard limits, streamed so a huge body never sits in memory.

Fields arrive as raw bytes per name (repeated names kept in order). A client may send the
image as a file part (curl -F "source_image=@x.jpg") or as a plain part: both work.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import BodyPartReader, web

from streamer.errors import ApiError

MAX_TEXT_FIELD = 64 * 1024
MAX_PARTS = 64
_MULTIPART_SLACK = 64 * 1024  # boundaries and the small text fields around the file


@dataclass
class Form:
    parts: dict[str, list[bytes]] = field(default_factory=dict)

    def raw(self, name: str) -> bytes | None:
        values = self.parts.get(name)
        return values[0] if values else None

    def texts(self, name: str) -> list[str]:
        out = []
        for v in self.parts.get(name, []):
            try:
                out.append(v.decode("utf-8").strip())
            except UnicodeDecodeError:
                raise ApiError(400, "invalid_field", f"{name} must be UTF-8 text") from None
        return out

    def text(self, name: str) -> str | None:
        values = self.texts(name)
        return values[0] if values else None

    def require_file(self, name: str) -> bytes:
        data = self.raw(name)
        if data is None:
            raise ApiError(400, "missing_field", f"the multipart field {name!r} is required")
        return data


def _too_large(limit_bytes: int) -> ApiError:
    return ApiError(413, "file_too_large",
                    f"the upload is larger than the {limit_bytes / 1048576:g} MB limit")


def body_timeout_error(seconds: float) -> ApiError:
    # The connection closes after this answer: the rest of the body may still be on its way.
    return ApiError(408, "body_timeout",
                    f"the request body did not arrive within {seconds:g} s", close=True)


async def read_form(request: web.Request, max_file_bytes: int, file_fields: tuple[str, ...],
                    timeout_s: float | None) -> Form:
    """Parse multipart/form-data (or urlencoded, text only). 413 past the limits, 400/415
    otherwise, 408 when the whole body has not arrived within ``timeout_s``.

    The limit is on the body itself: every byte the server reads counts, whatever part it
    belongs to (named, unnamed, nested) and however it is framed (Content-Length or chunked).
    Nothing shared (a session slot, a key's quota, the engine queue) may be held while this
    runs: a client that stops sending holds only its own connection, until the deadline.
    """
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_form(request, max_file_bytes, file_fields)
    except TimeoutError:
        raise body_timeout_error(timeout_s or 0.0) from None


def _check_body(request: web.Request, max_body: int, max_file_bytes: int) -> None:
    # total_bytes: everything the parser has handed over so far, after de-chunking.
    if request.content.total_bytes > max_body:
        raise _too_large(max_file_bytes)


async def _read_form(request: web.Request, max_file_bytes: int, file_fields: tuple[str, ...]) -> Form:
    max_body = max_file_bytes + _MULTIPART_SLACK
    if request.content_length is not None and request.content_length > max_body:
        raise _too_large(max_file_bytes)
    ctype = request.content_type
    form = Form()
    if ctype == "application/x-www-form-urlencoded":
        try:
            data = await request.post()
        except web.HTTPRequestEntityTooLarge:
            raise _too_large(max_file_bytes) from None
        except Exception as exc:  # noqa: BLE001 - bad charset, bad encoding: the client's fault
            raise ApiError(400, "bad_request", "the form body could not be parsed") from exc
        _check_body(request, max_body, max_file_bytes)
        for k, v in data.items():
            if isinstance(v, str):
                form.parts.setdefault(k, []).append(v.encode("utf-8"))
        return form
    if ctype != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "send the request as multipart/form-data (e.g. curl -F source_image=@photo.jpg)")
    try:
        reader = await request.multipart()
        count = 0
        while True:
            part = await reader.next()
            _check_body(request, max_body, max_file_bytes)
            if part is None:
                break
            count += 1
            if count > MAX_PARTS:
                raise ApiError(400, "bad_request", f"at most {MAX_PARTS} form fields are allowed")
            if not isinstance(part, BodyPartReader):
                raise ApiError(400, "bad_request", "nested multipart bodies are not supported")
            named = bool(part.name)
            # Unnamed parts are read and dropped, but their bytes count like any other.
            limit = max_file_bytes if part.name in file_fields else MAX_TEXT_FIELD
            buf = bytearray()
            while True:
                chunk = await part.read_chunk(64 * 1024)
                if not chunk:
                    break
                _check_body(request, max_body, max_file_bytes)
                if not named:
                    continue
                buf += chunk
                if len(buf) > limit:
                    if part.name in file_fields:
                        raise _too_large(max_file_bytes)
                    raise ApiError(413, "field_too_large", f"the field {part.name!r} is too long")
            if named:
                form.parts.setdefault(part.name, []).append(bytes(buf))
    except ApiError:
        raise
    except Exception as exc:  # noqa: BLE001 - malformed bodies raise many types; all are the client's
        raise ApiError(400, "bad_request", "the multipart body could not be parsed") from exc
    return form

"""Uploaded portraits: decode and validate the bytes, then prepare them through the cache.

Shared by /render, /render/batch and POST /sessions so that every entry point gives the
same errors for the same bad photo.
"""
from __future__ import annotations

import asyncio
import io
import warnings

import numpy as np
from PIL import Image, UnidentifiedImageError

from engine.api import EngineError, Source

from streamer.app_state import AppState
from streamer.errors import ApiError, api_error_of
from streamer.runtime.engine_worker import QueueFullError
from streamer.runtime.source_cache import content_key


def decode_image(data: bytes, max_pixels: int) -> np.ndarray:
    """Bytes -> HxWx3 uint8 RGB, or ApiError (400 empty, 413 too many pixels, 422 undecodable)."""
    if not data:
        raise ApiError(400, "empty_file", "source_image is empty")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            w, h = img.size
            if w * h > max_pixels:
                raise ApiError(413, "image_too_large",
                               f"image has {w}x{h} pixels; the limit is {max_pixels} pixels")
            img.load()  # truncated files fail here, not later
    except ApiError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ApiError(413, "image_too_large", "image has too many pixels") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise ApiError(422, "invalid_image",
                       "source_image is not a decodable image (JPEG, PNG or WebP)") from None
    if img.mode != "RGB":
        img = img.convert("RGB")
    arr = np.asarray(img, dtype=np.uint8)
    if arr.shape[0] < 32 or arr.shape[1] < 32:
        raise ApiError(422, "invalid_image", "image is too small (at least 32x32 pixels)")
    return np.ascontiguousarray(arr)


def check_pixels(data: bytes, max_pixels: int) -> None:
    """413 when the image header declares more than max_pixels (reads the header only)."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            w, h = img.size
    except Exception:  # noqa: BLE001 - undecodable: decode_image gives the real error
        return
    if w * h > max_pixels:
        raise ApiError(413, "image_too_large",
                       f"image has {w}x{h} pixels; the limit is {max_pixels} pixels")


async def prepare_portrait(state: AppState, data: bytes,
                           max_pixels: int | None = None) -> tuple[str, Source]:
    """Decode, then prepare once per distinct image (content-hash cache). Returns (key, source).

    Decoding happens inside the cache-miss path, so a hit never decodes and an eviction
    between a lookup and the prepare cannot leave us without an image. Decoding runs in a
    thread: a large JPEG takes tens of milliseconds, too long for the event loop.
    """
    key = content_key(data)
    limit = state.config.max_image_pixels if max_pixels is None else max_pixels
    if limit < state.config.max_image_pixels:
        # A caller with a smaller pixel budget (per-key limit): check before a cache hit
        # could hand back a portrait prepared for someone with a larger one.
        await asyncio.to_thread(check_pixels, data, limit)

    async def _prepare() -> Source:
        image = await asyncio.to_thread(decode_image, data, limit)
        return await state.worker.prepare(image)

    try:
        source = await state.cache.get_or_prepare(key, _prepare)
    except (QueueFullError, EngineError) as exc:
        raise api_error_of(exc) from None
    return key, source

"""Uploaded portraits: decode and validate the bytes, then prepare them through the cache.

Shared by /render, /render/batch and POST /sessions so that every entry point gives the
same errors for the same bad photo.
"""
from __future__ import annotations

import asyncio

from engine.api import EngineError, Source

from streamer.app_state import AppState
from streamer.errors import api_error_of
from streamer.http.decode import check_pixels, decode_image
from streamer.runtime.engine_worker import QueueFullError
from streamer.runtime.source_cache import content_key


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
        image = await asyncio.to_thread(decode_image, data, limit, state.config.max_source_pixels)
        return await state.worker.prepare(image)

    try:
        source = await state.cache.get_or_prepare(key, _prepare)
    except (QueueFullError, EngineError) as exc:
        raise api_error_of(exc) from None
    return key, source


__all__ = ["check_pixels", "decode_image", "prepare_portrait"]

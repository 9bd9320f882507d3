"""Builds the aiohttp application: state, middleware, REST, sessions, demo page."""
from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import AsyncIterator

from aiohttp import web

from engine.api import Engine

from prometheus_client import CollectorRegistry

from streamer.access.control import AccessControl, access_middleware
from streamer.access.cors import cors_middleware
from streamer.app_state import STATE_KEY, AppState
from streamer.config import ServerConfig
from streamer.http.metrics import create_metrics
from streamer.http.middleware import errors_and_metrics
from streamer.http.openapi import setup_openapi
from streamer.http.outputs import OutputStore
from streamer.http.rest import setup_rest
from streamer.http.video import setup_video
from streamer.http.web_routes import setup_web
from streamer.routes import check_routes
from streamer.runtime.engine_worker import EngineWorker
from streamer.runtime.gpu import probe_gpu
from streamer.runtime.source_cache import SourceCache
from streamer.sessions import setup_sessions
from streamer.sessions.metrics import SessionMetrics
from streamer.sessions.registry import SessionRegistry

log = logging.getLogger("streamer")

# Multipart boundaries and text fields ride on top of the image itself.
_BODY_SLACK_BYTES = 256 * 1024


def create_app(config: ServerConfig, engine: Engine) -> web.Application:
    """The whole server for one engine. The engine must already be loaded."""
    worker = EngineWorker(engine, max_pending=config.engine_queue)
    cache = SourceCache(max_entries=config.cache_entries, release=engine.release)
    prometheus = CollectorRegistry()
    state = AppState(
        config=config, engine=engine, worker=worker, cache=cache, prometheus=prometheus,
        metrics=create_metrics(prometheus, worker),
        outputs=OutputStore(config.output_dir, config.output_ttl_s),
        gpu=probe_gpu(),
        access=AccessControl(config.access, config.max_upload_bytes, config.max_image_pixels),
        sessions=SessionRegistry(config.sessions, cache, SessionMetrics.create(prometheus)),
    )
    # Outermost first: origin checks and security headers, then JSON errors + metrics, then
    # keys/tokens/limits (whose 401/403/429 become JSON errors in the middle layer).
    app = web.Application(middlewares=[cors_middleware(config.access.cors_origins),
                                       errors_and_metrics, access_middleware(state)],
                          client_max_size=config.max_upload_bytes + _BODY_SLACK_BYTES)
    app[STATE_KEY] = state
    setup_rest(app)
    setup_video(app)
    setup_sessions(app, state)
    setup_web(app, state)
    setup_openapi(app, state)
    check_routes(app)
    app.cleanup_ctx.append(_output_expiry)
    app.on_cleanup.append(_close_engine_side)
    return app


async def _output_expiry(app: web.Application) -> AsyncIterator[None]:
    """Sweep expired outputs in the background (reads already refuse expired files)."""
    state = app[STATE_KEY]
    store = state.outputs
    period = max(1.0, min(60.0, state.config.output_ttl_s / 4))

    async def sweep() -> None:
        while True:
            try:
                removed = await asyncio.to_thread(store.expire)
                if removed:
                    log.info("expired %d outputs", removed)
            except Exception:  # noqa: BLE001 - a failed sweep must not stop the next one
                log.exception("output expiry failed")
            await asyncio.sleep(period)

    task = asyncio.create_task(sweep(), name="output-expiry")
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _close_engine_side(app: web.Application) -> None:
    state = app[STATE_KEY]
    state.worker.shutdown()
    state.cache.clear()

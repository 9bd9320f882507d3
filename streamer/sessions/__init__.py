"""Real-time sessions (WebSocket control, WebRTC video, batched render loop)."""
from __future__ import annotations

import asyncio

from aiohttp import web

from streamer.app_state import AppState
from streamer.sessions.metrics import SessionMetrics
from streamer.sessions.registry import Session, SessionRegistry
from streamer.sessions.routes import REGISTRY_KEY, registry_of

__all__ = ["setup_sessions", "Session", "SessionRegistry", "registry_of"]


def setup_sessions(app: web.Application, state: AppState) -> None:
    """Add the /sessions routes and the scheduler's startup/shutdown hooks."""
    from streamer.sessions.scheduler import Scheduler  # the scheduler imports this package's modules
    from . import routes

    metrics = SessionMetrics.create(state.registry)
    registry = SessionRegistry(state.config.sessions, state.cache, metrics)
    scheduler = Scheduler(registry, state.worker, metrics)
    state.extras[REGISTRY_KEY] = registry
    state.extras["scheduler"] = scheduler
    tasks: list[asyncio.Task] = []

    async def _start(app: web.Application) -> None:
        scheduler.start()
        tasks.append(asyncio.get_running_loop().create_task(registry.housekeeping(),
                                                            name="session-housekeeping"))

    async def _shutdown(app: web.Application) -> None:
        # Sockets close with 1001 and peers close before aiohttp waits on handlers.
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await registry.shutdown()
        await scheduler.stop()

    app.on_startup.append(_start)
    app.on_shutdown.append(_shutdown)
    app.router.add_post("/sessions", routes.create_session)
    app.router.add_get("/sessions", routes.list_sessions)
    app.router.add_get("/sessions/{session_id}", routes.get_session)
    app.router.add_delete("/sessions/{session_id}", routes.delete_session)
    app.router.add_get("/sessions/{session_id}/ws", routes.ws_route)

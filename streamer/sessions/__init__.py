"""Real-time sessions: WebSocket control, WebRTC video, and the batched render loop.

routes.py (REST + the WebSocket route) -> ws.py (one socket: incoming messages.py, outgoing
events.py) -> session.py (one session's state) <- scheduler.py (renders every due session)
-> webrtc.py (viewers) and frames.py (subscribe_frames). registry.py owns limits and expiry.
"""
from __future__ import annotations

import asyncio

from aiohttp import web

from streamer.app_state import AppState
from streamer.sessions import routes, say_route, speech_routes
from streamer.sessions.registry import SessionRegistry
from streamer.sessions.scheduler import Scheduler
from streamer.sessions.session import Session

__all__ = ["setup_sessions", "Session", "SessionRegistry", "registry_of"]


def registry_of(state: AppState) -> SessionRegistry:
    """The app's sessions (the same object as ``state.sessions``)."""
    return state.sessions


def _measure_engine(state: AppState, registry: SessionRegistry) -> None:
    """Every engine render's time on the engine thread feeds the session load monitor (REST
    renders too: they use the same engine thread), next to the metrics. Prepares do not: a
    portrait's one-off preparation (up to a second) would read as overload and slow every
    session down for a moment's work."""
    previous = state.worker.observer
    headroom = registry.headroom

    def observe(op: str, seconds: float, batch: int) -> None:
        if previous is not None:
            previous(op, seconds, batch)
        if op == "render":
            headroom.add_engine(seconds)

    state.worker.observer = observe
    metrics = registry.metrics
    metrics.load.set_function(headroom.load)
    metrics.fps_factor.set_function(lambda: headroom.factor)


def setup_sessions(app: web.Application, state: AppState) -> None:
    """Add the /sessions routes and the scheduler's startup/shutdown hooks."""
    registry = state.sessions
    scheduler = Scheduler(registry, state.worker, registry.metrics)
    tasks: list[asyncio.Task] = []
    _measure_engine(state, registry)

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
    app.router.add_post("/sessions/{session_id}/speech", speech_routes.post_speech)
    app.router.add_post("/sessions/{session_id}/say", say_route.post_say)
    app[say_route.TTS_SLOTS] = say_route.TtsSlots()

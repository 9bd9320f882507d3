"""Real-time sessions (WebSocket control, WebRTC video, batched render loop)."""
from __future__ import annotations

from aiohttp import web

from ..app_state import AppState


def setup_sessions(app: web.Application, state: AppState) -> None:
    """Add the /sessions routes and the scheduler's startup/shutdown hooks (filled in by the sessions work)."""

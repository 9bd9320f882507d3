"""The demo page: serves web/ at / (filled in by the demo-page work)."""
from __future__ import annotations

from aiohttp import web

from .app_state import AppState


def setup_web(app: web.Application, state: AppState) -> None:
    """Add the / route and static assets of the demo page."""

"""What every handler shares, stored once on the aiohttp app under STATE_KEY."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from engine.api import Engine

from streamer.config import ServerConfig
from streamer.runtime.engine_worker import EngineWorker
from streamer.runtime.source_cache import SourceCache


@dataclass
class AppState:
    config: ServerConfig
    engine: Engine
    worker: EngineWorker
    cache: SourceCache
    # Per-app registry, so that several servers in one test process never collide.
    registry: CollectorRegistry = field(default_factory=CollectorRegistry)
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the session manager


STATE_KEY: web.AppKey[AppState] = web.AppKey("state", AppState)

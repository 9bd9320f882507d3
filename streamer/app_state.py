"""What every handler shares, stored once on the aiohttp app under STATE_KEY.

Every part of the server is a typed field here, built once by ``app.create_app``; there is
no string-keyed bag. Types are imported for checkers only: the modules that define them
import this one (``request.app[STATE_KEY]``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiohttp import web
from prometheus_client import CollectorRegistry

from engine.api import Engine
from streamer.config import ServerConfig

if TYPE_CHECKING:
    from streamer.access.control import AccessControl
    from streamer.http.metrics import Metrics
    from streamer.http.outputs import OutputStore
    from streamer.runtime.engine_worker import EngineWorker
    from streamer.runtime.gpu import GpuFacts
    from streamer.runtime.source_cache import SourceCache
    from streamer.sessions.registry import SessionRegistry


@dataclass
class SampleCache:
    """The demo page's sample portraits, loaded on first request (file I/O and decoding)."""

    bytes_by_name: dict[str, bytes] = field(default_factory=dict)
    names: list[str] | None = None  # the installed ones, once looked up


@dataclass
class AppState:
    config: ServerConfig
    engine: Engine
    worker: EngineWorker
    cache: SourceCache
    # Per-app registry, so that several servers in one test process never collide.
    prometheus: CollectorRegistry
    metrics: Metrics
    outputs: OutputStore
    gpu: GpuFacts  # probed once at startup; /health reports it
    access: AccessControl
    sessions: SessionRegistry
    samples: SampleCache = field(default_factory=SampleCache)


STATE_KEY: web.AppKey[AppState] = web.AppKey("state", AppState)

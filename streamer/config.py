"""Server configuration: one dataclass, filled by the CLI (streamer/cli.py)."""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class SessionLimits:
    max_sessions: int = 8
    idle_timeout_s: float = 120.0  # no WebSocket and no ping for this long -> closed
    max_age_s: float = 3600.0
    default_fps: int = 25
    default_size: int = 512
    max_viewers_per_session: int = 16  # WebRTC peers watching one session
    max_viewers_per_socket: int = 4  # offers one WebSocket may open
    # Refuse new sessions (503 server_busy) when the measured load with one more would pass
    # this share of the frame budget (sessions/headroom.py); 0: only max_sessions limits.
    max_load: float = 0.85


@dataclass
class AccessConfig:
    """Who may call the server and how much (streamer/access/control.py). All off by default."""
    api_keys: list[str] = field(default_factory=list)  # empty: no auth (loopback use)
    metrics_auth: bool = False  # /metrics needs a key too
    cors_origins: list[str] = field(default_factory=list)  # empty: no cross-origin access
    rate_limit_rps: float | None = None  # render requests per second per key; None: unlimited
    rate_burst: int = 10
    max_sessions_per_key: int | None = None
    key_max_upload_mb: float | None = None  # keyed callers; None: the global limit
    key_max_image_pixels: int | None = None


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 8001
    engine: str = "auto"  # auto | mesh | liveportrait
    device: str = "auto"  # auto | cpu | cuda
    weights_dir: Path | None = None
    output_dir: Path = field(default_factory=lambda: Path(tempfile.gettempdir()) / "liveportrait_output")
    output_ttl_s: float = 3600.0
    max_upload_mb: float = 10.0
    max_image_pixels: int = 40_000_000
    engine_process: str = "auto"  # auto | on | off: the engine in a child process (runtime/engine_process.py)
    engine_queue: int = 32  # bounded queue in front of the engine thread
    cache_entries: int = 32
    ice_servers: list[str] = field(default_factory=list)
    sessions: SessionLimits = field(default_factory=SessionLimits)
    access: AccessConfig = field(default_factory=AccessConfig)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

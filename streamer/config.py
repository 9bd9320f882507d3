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
    viewer_connect_timeout_s: float = 30.0  # a viewer not connected by then is dropped
    ws_heartbeat_s: float = 20.0  # WebSocket ping interval; no pong within half of it: closed
    # WebSocket caps (docs/protocol.md): past them a socket is closed with 4029, a
    # subscribe_frames gets too_many_subscriptions. Per key: all sessions of one API key.
    max_sockets: int = 256
    max_sockets_per_session: int = 16
    max_sockets_per_key: int = 64
    max_subscriptions_per_session: int = 16
    max_subscriptions_per_key: int = 64
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
    # Larger photos are scaled down to this while decoding: no engine call works on more.
    max_source_pixels: int = 2_359_296  # 1536 x 1536
    # One REST request's work: output pixels x frames (crop frames count 512x512, full-mode
    # frames the photo's size after the scale-down above). Past it: 413 request_too_costly.
    max_request_pixels: int = 32 * 1_048_576
    body_timeout_s: float = 60.0  # a request body must arrive within this; else 408
    allowed_hosts: list[str] = field(default_factory=list)  # Host names besides loopback/IPs
    engine_process: str = "auto"  # auto | on | off: the engine in a child process (runtime/engine_process.py)
    engine_queue: int = 32  # bounded queue in front of the engine thread
    cache_entries: int = 32
    ice_servers: list[str] = field(default_factory=list)
    sessions: SessionLimits = field(default_factory=SessionLimits)
    access: AccessConfig = field(default_factory=AccessConfig)

    @property
    def max_upload_bytes(self) -> int:
        return int(self.max_upload_mb * 1024 * 1024)

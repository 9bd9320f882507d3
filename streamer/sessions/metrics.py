"""Session metrics on the app's own Prometheus registry (names prefixed liveportrait_session)."""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_ENCODE_BUCKETS = (0.001, 0.002, 0.003, 0.005, 0.008, 0.012, 0.02, 0.04, 0.08)
_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.03, 0.04, 0.06, 0.08, 0.1, 0.12, 0.16, 0.25, 0.5, 1.0)


@dataclass
class SessionMetrics:
    sessions_active: Gauge
    viewers: Gauge
    frames_rendered: Counter
    frames_dropped: Counter
    batch_size: Histogram
    render_seconds: Histogram
    control_to_frame_seconds: Histogram
    frame_encodes: Counter
    load: Gauge  # read from the registry's Headroom at scrape time
    fps_factor: Gauge
    encodes: Counter
    encode_seconds: Histogram

    @staticmethod
    def create(reg: CollectorRegistry) -> "SessionMetrics":
        return SessionMetrics(
            sessions_active=Gauge("liveportrait_sessions_active", "Open avatar sessions",
                                  registry=reg),
            viewers=Gauge("liveportrait_session_viewers", "Connected WebRTC viewers (peers)",
                          registry=reg),
            frames_rendered=Counter("liveportrait_session_frames_rendered_total",
                                    "Session frames handed to viewers", registry=reg),
            frames_dropped=Counter("liveportrait_session_frames_dropped_total",
                                   "Session frame slots skipped because a tick overran",
                                   registry=reg),
            batch_size=Histogram("liveportrait_session_batch_size",
                                 "Session frames per batched engine call",
                                 buckets=(1, 2, 3, 4, 6, 8, 12, 16, 32), registry=reg),
            render_seconds=Histogram("liveportrait_session_render_seconds",
                                     "Wall time of one batched session render (engine queue "
                                     "included)", buckets=_LATENCY_BUCKETS, registry=reg),
            control_to_frame_seconds=Histogram(
                "liveportrait_session_control_to_frame_seconds",
                "From an accepted control message to the first frame rendered with it",
                buckets=_LATENCY_BUCKETS, registry=reg),
            frame_encodes=Counter("liveportrait_session_frame_encodes_total",
                                  "subscribe_frames encodes (one per frame per distinct stream, "
                                  "however many sockets share it)", registry=reg),
            load=Gauge("liveportrait_session_load",
                       "Measured engine + encode busy time per second against the frame "
                       "budget (1.0 = no headroom left)", registry=reg),
            fps_factor=Gauge("liveportrait_session_fps_factor",
                             "Rate factor every session runs at (1.0 = full fps; lower when "
                             "the server is overloaded, never below 15 fps)", registry=reg),
            encodes=Counter("liveportrait_session_encodes_total",
                            "Session video frames encoded (one per frame for all viewers)",
                            registry=reg),
            encode_seconds=Histogram("liveportrait_session_encode_seconds",
                                     "Time of one session video encode (colour conversion "
                                     "included)", buckets=_ENCODE_BUCKETS, registry=reg),
        )

"""Prometheus metrics, registered on the app's own registry (state.registry).

The seed's three metrics (labelled by endpoint and status) are recorded by the middleware;
engine timings are recorded by the EngineWorker's observer. Other parts of the server add
their own through ``metrics_of(state).counter/gauge/histogram`` (idempotent by name).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streamer.app_state import AppState

_EXTRAS_KEY = "metrics"

# Request latencies: a CPU render is a few ms, a cold prepare a few hundred.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ENGINE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests_total: Counter
    request_duration: Histogram
    errors_total: Counter
    engine_seconds: Histogram  # label op: prepare | render
    engine_batch_size: Histogram
    _extra: dict[str, object] = field(default_factory=dict)

    def observe_engine(self, op: str, seconds: float, batch: int) -> None:
        self.engine_seconds.labels(op=op).observe(seconds)
        if op == "render":
            self.engine_batch_size.observe(batch)

    def counter(self, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
        return self._get(name, lambda: Counter(name, doc, list(labels), registry=self.registry))

    def gauge(self, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
        return self._get(name, lambda: Gauge(name, doc, list(labels), registry=self.registry))

    def histogram(self, name: str, doc: str, labels: Sequence[str] = (),
                  buckets: Sequence[float] = ENGINE_BUCKETS) -> Histogram:
        return self._get(name, lambda: Histogram(name, doc, list(labels), buckets=tuple(buckets),
                                                 registry=self.registry))

    def _get(self, name: str, make):  # type: ignore[no-untyped-def]
        if name not in self._extra:
            self._extra[name] = make()
        return self._extra[name]

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def setup_metrics(state: AppState) -> Metrics:
    reg = state.registry
    m = Metrics(
        registry=reg,
        requests_total=Counter("liveportrait_requests_total", "HTTP requests",
                               ["endpoint", "method", "status"], registry=reg),
        request_duration=Histogram("liveportrait_request_duration_seconds",
                                   "HTTP request duration", ["endpoint", "method"],
                                   buckets=REQUEST_BUCKETS, registry=reg),
        errors_total=Counter("liveportrait_errors_total", "HTTP requests answered with an error",
                             ["endpoint", "status"], registry=reg),
        engine_seconds=Histogram("liveportrait_engine_seconds",
                                 "Time the engine spent per call (prepare, batched render)",
                                 ["op"], buckets=ENGINE_BUCKETS, registry=reg),
        engine_batch_size=Histogram("liveportrait_engine_batch_size", "Frames per engine render call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=reg),
    )
    # Read the worker's own counters at scrape time: no second bookkeeping to drift.
    Gauge("liveportrait_engine_queue_pending", "Engine calls queued or running",
          registry=reg).set_function(lambda: state.worker.stats.pending)
    Gauge("liveportrait_engine_queue_rejected", "Engine calls refused (queue full) since start",
          registry=reg).set_function(lambda: state.worker.stats.rejected)
    state.worker.observer = m.observe_engine
    state.extras[_EXTRAS_KEY] = m
    return m


def metrics_of(state: AppState) -> Metrics:
    return state.extras[_EXTRAS_KEY]  # type: ignore[return-value]

"""Prometheus metrics of the HTTP side and the engine, on the app's own registry
(state.prometheus); sessions keep theirs in sessions/metrics.py.

The seed's three metrics (labelled by endpoint and status) are recorded by the middleware;
engine timings are recorded by the EngineWorker's observer. A new metric is a field here,
created in ``create_metrics`` and recorded where the event happens.
"""
from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from streamer.runtime.engine_worker import EngineWorker

# Request latencies: a CPU render is a few ms, a cold prepare a few hundred.
REQUEST_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
ENGINE_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


@dataclass
class Metrics:
    registry: CollectorRegistry
    requests_total: Counter
    request_duration: Histogram
    errors_total: Counter
    in_flight: Gauge  # label endpoint: requests being handled now (what a drain waits for)
    engine_seconds: Histogram  # label op: prepare | render
    engine_batch_size: Histogram

    def observe_engine(self, op: str, seconds: float, batch: int) -> None:
        self.engine_seconds.labels(op=op).observe(seconds)
        if op == "render":
            self.engine_batch_size.observe(batch)

    def exposition(self) -> tuple[bytes, str]:
        return generate_latest(self.registry), CONTENT_TYPE_LATEST


def create_metrics(reg: CollectorRegistry, worker: EngineWorker) -> Metrics:
    """The metrics, registered on ``reg``; the worker reports its engine calls to them."""
    m = Metrics(
        registry=reg,
        requests_total=Counter("liveportrait_requests_total", "HTTP requests",
                               ["endpoint", "method", "status"], registry=reg),
        request_duration=Histogram("liveportrait_request_duration_seconds",
                                   "HTTP request duration", ["endpoint", "method"],
                                   buckets=REQUEST_BUCKETS, registry=reg),
        errors_total=Counter("liveportrait_errors_total", "HTTP requests answered with an error",
                             ["endpoint", "status"], registry=reg),
        in_flight=Gauge("liveportrait_requests_in_flight",
                        "HTTP requests being handled now (headers read, answer not yet sent)",
                        ["endpoint"], registry=reg),
        engine_seconds=Histogram("liveportrait_engine_seconds",
                                 "Time the engine spent per call (prepare, batched render)",
                                 ["op"], buckets=ENGINE_BUCKETS, registry=reg),
        engine_batch_size=Histogram("liveportrait_engine_batch_size", "Frames per engine render call",
                                    buckets=(1, 2, 4, 8, 16, 32, 64), registry=reg),
    )
    # Read the worker's own counters at scrape time: no second bookkeeping to drift.
    Gauge("liveportrait_engine_queue_pending", "Engine calls queued or running",
          registry=reg).set_function(lambda: worker.stats.pending)
    Gauge("liveportrait_engine_queue_rejected", "Engine calls refused (queue full) since start",
          registry=reg).set_function(lambda: worker.stats.rejected)
    worker.observer = m.observe_engine
    return m

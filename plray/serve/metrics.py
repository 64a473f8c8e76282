"""Prometheus metrics of one replica (``prometheus_client``, a registry per process).

``GET /metrics`` returns this replica's registry in the Prometheus text format. With several
replicas a scrape through the Serve proxy reaches one of them: per-replica numbers, not totals.
For cluster-wide totals scrape Ray's metrics-export port (Serve's own
``ray_serve_num_http_requests_total``, ``ray_serve_http_request_latency_ms``, ...) or scrape each
replica; see docs/serve.md.

Series (all prefixed ``plray_serve_``):

* ``requests_total{endpoint, status}``: answered requests;
* ``request_latency_seconds{endpoint}``: time from the body read to the answer, a histogram;
* ``batch_rows{endpoint}``: rows (B, or B·H for rollout) per request, a histogram;
* ``model_batch_rows`` / ``model_batch_requests``: rows and requests per ``@serve.batch`` model call;
* ``model_loads_total{model, outcome}`` and ``model_load_seconds``: artifact loads (ok / error);
* ``errors_total{kind}``: refusals and failures by kind (invalid_input, not_found, ...);
* ``models_loaded``: models served by the replica.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

LATENCY_BUCKETS = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0)
ROW_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
REQUEST_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128)


class ServeMetrics:
    """The replica's metrics; ``render()`` is the ``/metrics`` body."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("plray_serve_requests", "Answered requests", ["endpoint", "status"], registry=r)
        self.latency = Histogram(
            "plray_serve_request_latency_seconds", "Request latency", ["endpoint"], buckets=LATENCY_BUCKETS, registry=r
        )
        self.rows = Histogram(
            "plray_serve_batch_rows", "Rows per request (B, or B*H)", ["endpoint"], buckets=ROW_BUCKETS, registry=r
        )
        self.model_batch_rows = Histogram(
            "plray_serve_model_batch_rows", "Rows per batched model call", buckets=ROW_BUCKETS, registry=r
        )
        self.model_batch_requests = Histogram(
            "plray_serve_model_batch_requests",
            "Requests per batched model call",
            buckets=REQUEST_BUCKETS,
            registry=r,
        )
        self.loads = Counter("plray_serve_model_loads", "Model artifact loads", ["model", "outcome"], registry=r)
        self.load_seconds = Histogram(
            "plray_serve_model_load_seconds", "Model load time", buckets=LATENCY_BUCKETS, registry=r
        )
        self.errors = Counter("plray_serve_errors", "Refusals and failures by kind", ["kind"], registry=r)
        self.models_loaded = Gauge("plray_serve_models_loaded", "Models served by this replica", registry=r)

    def on_load(self, model_id: str, version: str, outcome: str, seconds: float) -> None:
        """The registry's load callback."""
        self.loads.labels(model=model_id, outcome=outcome).inc()
        self.load_seconds.observe(seconds)

    def render(self) -> bytes:
        """Prometheus text exposition of this replica's registry."""
        return generate_latest(self.registry)

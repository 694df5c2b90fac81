"""Prometheus metrics on their own HTTP port (prometheus-client). This module holds the service
metrics every layer may update; the per-monitor drift gauges join them with the drift engine."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Info, start_http_server


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.build_info = Info("driftd_build", "driftd version and protocol", registry=self.registry)
        self.monitors = Gauge("driftd_monitors", "Monitors defined in the store", registry=self.registry)
        self.draining = Gauge("driftd_draining", "1 while the server drains before shutdown", registry=self.registry)
        self.ingest_rows = Counter("driftd_ingest_rows_total", "Rows received in batches, by monitor and outcome "
                                   "(accepted, duplicate, rejected)", ["monitor", "outcome"], registry=self.registry)
        self.ingest_batches = Counter("driftd_ingest_batches_total", "Batches received, by monitor and outcome",
                                      ["monitor", "outcome"], registry=self.registry)
        self.rows_applied = Counter("driftd_rows_applied_total", "Rows applied to the monitor's window (after the queue)",
                                    ["monitor"], registry=self.registry)
        self.queue_depth = Gauge("driftd_ingest_queue_depth", "Batches waiting in the monitor's ingest queue", ["monitor"],
                                 registry=self.registry)

    def serve(self, host: str, port: int):
        """Start the /metrics HTTP server; returns (http_server, bound_port)."""
        httpd, _thread = start_http_server(port, addr=host, registry=self.registry)
        return httpd, httpd.server_address[1]

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
        self.rpc_errors = Counter("driftd_rpc_errors_total", "RPCs that ended with an error status, by code",
                                  ["code"], registry=self.registry)

    def serve(self, host: str, port: int):
        """Start the /metrics HTTP server; returns (http_server, bound_port)."""
        httpd, _thread = start_http_server(port, addr=host, registry=self.registry)
        return httpd, httpd.server_address[1]

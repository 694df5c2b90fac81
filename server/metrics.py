"""Prometheus metrics on their own HTTP port (prometheus-client). This module holds the service
metrics every layer may update; the per-monitor drift gauges join them with the drift engine."""

from __future__ import annotations

import gzip
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Callable

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    Info,
    disable_created_metrics,
    generate_latest,
)

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from driftd.server.logs import get_logger

log = get_logger("driftd.metrics")

# The body is the classic text format (generate_latest and the drift text both write it); say so,
# whatever version prometheus-client would advertise by default.
TEXT_FORMAT = "text/plain; version=0.0.4; charset=utf-8"

# `_created` series double every counter's cardinality and no dashboard or rule here reads them.
disable_created_metrics()

# Seconds; ingest acks are sub-millisecond to tens of ms, evaluations milliseconds to seconds.
_FAST_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class _QueueDepthCollector(Collector):
    def __init__(self, depths: Callable[[], dict[str, int]]) -> None:
        self._depths = depths

    def describe(self) -> list:
        return []

    def collect(self):
        family = GaugeMetricFamily("driftd_ingest_queue_depth", "Batches waiting in the monitor's ingest queue", labels=["monitor"])
        for monitor_id, depth in sorted(self._depths().items()):
            family.add_metric([monitor_id], depth)
        yield family


class ServiceMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        # Text appended to every scrape (the drift families, rendered once per snapshot).
        self.extra_exposition: list[Callable[[], bytes]] = []
        self.build_info = Info("driftd_build", "driftd version and protocol", registry=self.registry)
        self.monitors = Gauge("driftd_monitors", "Monitors defined in the store", registry=self.registry)
        self.draining = Gauge("driftd_draining", "1 while the server drains before shutdown", registry=self.registry)
        self.ingest_rows = Counter("driftd_ingest_rows_total", "Rows received in batches, by monitor and outcome "
                                   "(accepted, duplicate, rejected)", ["monitor", "outcome"], registry=self.registry)
        self.ingest_batches = Counter("driftd_ingest_batches_total", "Batches received, by monitor and outcome",
                                      ["monitor", "outcome"], registry=self.registry)
        self.rows_applied = Counter("driftd_rows_applied_total", "Rows applied to the monitor's window (after the queue)",
                                    ["monitor"], registry=self.registry)
        # read at scrape time from the runtimes (set by the assembly point): never stale
        self.queue_depths: Callable[[], dict[str, int]] = dict
        self.registry.register(_QueueDepthCollector(lambda: self.queue_depths()))
        self.ingest_batch_seconds = Histogram("driftd_ingest_batch_seconds", "Time from a batch's arrival to its ack "
                                              "(decode, validate, enqueue)", buckets=_FAST_BUCKETS, registry=self.registry)
        self.evaluation_seconds = Histogram("driftd_evaluation_duration_seconds", "Time to evaluate a window into a snapshot",
                                            ["monitor"], buckets=_SLOW_BUCKETS, registry=self.registry)
        self.rpc_requests = Counter("driftd_rpc_requests_total", "Finished RPCs by method and status code",
                                    ["method", "code"], registry=self.registry)
        self.rpc_seconds = Histogram("driftd_rpc_duration_seconds", "Latency of unary RPCs by method", ["method"],
                                     buckets=_FAST_BUCKETS, registry=self.registry)
        self.alarm_events = Counter("driftd_alarm_events_total", "Alarm state transitions appended to the log, by severity and new state (operator silences / acks not included)",
                                    ["severity", "state"], registry=self.registry)
        self.alarm_subscribers = Gauge("driftd_alarm_subscribers", "Open alarm subscriptions (the Alertmanager forwarder holds one when enabled)", registry=self.registry)
        self.alertmanager_alerts = Counter("driftd_alertmanager_alerts_total", "Alerts posted to Alertmanager, by outcome "
                                           "(sent, retried, failed, dropped)", ["outcome"], registry=self.registry)

    def exposition(self) -> bytes:
        """The whole /metrics body: the registry's families, then the pre-rendered extra text."""
        return generate_latest(self.registry) + b"".join(extra() for extra in self.extra_exposition)

    def serve(self, host: str, port: int):
        """Start the /metrics HTTP server (a daemon thread); returns (http_server, bound_port)."""
        metrics = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                if self.path.split("?")[0] not in ("/metrics", "/"):
                    self.send_error(404, "only /metrics is served here")
                    return
                try:
                    body = metrics.exposition()
                except Exception as exc:  # noqa: BLE001 - answer 500 and log, never drop the connection
                    log.error("metrics_scrape_failed", exc_info=exc)
                    self.send_error(500, "scrape failed; see the server log")
                    return
                gzipped = "gzip" in (self.headers.get("Accept-Encoding") or "")
                if gzipped:  # a remote Prometheus asks for it; 5 MB of text compresses ~20x
                    body = gzip.compress(body, compresslevel=1)
                self.send_response(200)
                self.send_header("Content-Type", TEXT_FORMAT)
                if gzipped:
                    self.send_header("Content-Encoding", "gzip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:  # scrapes are not worth a log line each
                pass

        httpd = ThreadingHTTPServer((host, port), Handler)
        httpd.daemon_threads = True
        threading.Thread(target=httpd.serve_forever, name="driftd-metrics", daemon=True).start()
        return httpd, httpd.server_address[1]

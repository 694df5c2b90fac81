"""The single assembly point: store, runtimes, servicers, health, reflection, metrics -> a server.

    server, port = await build_server(settings)   # port 0 binds any free port (tests)
    await server.start()
    ...
    await server.drain_and_stop()                  # SIGTERM path: NOT_SERVING, streams end, queues applied, store flushed
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timezone

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from driftd.server import heap
from driftd.server.config import Settings
from driftd.server.logs import get_logger
from driftd.server.metrics import ServiceMetrics
from driftd.server.observability.alertmanager import AlertmanagerForwarder
from driftd.server.observability.drift_metrics import DriftCollector
from driftd.server.service import engine_adapter
from driftd.server.service.alarm_hub import AlarmHub
from driftd.server.service.alarm_manager import AlarmManager
from driftd.server.service.runtime import MonitorRuntime
from driftd.server.service.runtimes import Runtimes
from driftd.server.store.sqlite import SqliteStore
from driftd.server.transport.alarms import AlarmServicer
from driftd.server.transport.baselines import BaselineServicer
from driftd.server.transport.ingest import IngestServicer
from driftd.server.transport.interceptors import GuardInterceptor, MetricsInterceptor
from driftd.server.transport.lifecycle import Lifecycle
from driftd.server.transport.monitors import MonitorServicer
from driftd.server.transport.snapshots import SnapshotServicer
from driftd.v1 import alarm_pb2_grpc, baseline_pb2_grpc, ingest_pb2_grpc, monitor_pb2_grpc, snapshot_pb2_grpc

log = get_logger("driftd.app")
VERSION = "0.1.0"

DRIFTD_SERVICES = [
    "driftd.v1.MonitorService",
    "driftd.v1.BaselineService",
    "driftd.v1.IngestService",
    "driftd.v1.SnapshotService",
    "driftd.v1.AlarmService",
]


@dataclass
class DriftdServer:
    settings: Settings
    grpc_server: grpc.aio.Server
    port: int
    store: SqliteStore
    lifecycle: Lifecycle
    metrics: ServiceMetrics
    runtimes: Runtimes
    alarm_hub: AlarmHub
    alarm_manager: AlarmManager
    executor: ThreadPoolExecutor
    metrics_port: int | None = None
    alertmanager: AlertmanagerForwarder | None = None
    _metrics_httpd: object | None = None
    _warm_up: asyncio.Task | None = None
    _stopped: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        await self.grpc_server.start()
        await self.lifecycle.set_serving(DRIFTD_SERVICES)
        if self.alertmanager is not None:
            self.alertmanager.start()
        # Monitors resume evaluating (and /metrics shows their last snapshot) without waiting for traffic.
        self._warm_up = asyncio.create_task(self._warm(), name="warm-up")
        if self.settings.metrics_port >= 0:
            self._metrics_httpd, self.metrics_port = self.metrics.serve(self.settings.host, self.settings.metrics_port)
        log.info("serving", grpc_port=self.port, metrics_port=self.metrics_port, data_dir=str(self.settings.data_dir))

    async def _warm(self) -> None:
        """Load every monitor's runtime and alarm engine (persisted instance states), so evaluations,
        /metrics (drift series, alarms firing) and Alertmanager resends resume without traffic."""
        await self.runtimes.warm_up()
        for runtime in self.runtimes.all():
            try:
                await self.alarm_manager.engine_for(runtime.monitor)
            except Exception as exc:  # noqa: BLE001 - logged; the engine loads again on the next snapshot
                log.error("warm_up_alarms_failed", monitor=runtime.monitor_id, exc_info=exc)
        heap.request_freeze("start_up")

    async def drain_and_stop(self, grace: float | None = None) -> None:
        """Health NOT_SERVING, open streams end with UNAVAILABLE("draining"), in-flight unary calls
        get `grace` seconds, every acknowledged batch still queued is applied, then the store is
        flushed and closed. Idempotent."""
        if self._stopped.is_set():
            return
        grace = self.settings.grace_period_s if grace is None else grace
        log.info("draining", grace_s=grace)
        self.metrics.draining.set(1)
        await self.lifecycle.drain()
        if self._warm_up is not None and not self._warm_up.done():
            self._warm_up.cancel()
            await asyncio.gather(self._warm_up, return_exceptions=True)
        await self.grpc_server.stop(grace)
        await self.runtimes.close_all()
        # after close_all (a runtime still warming up could request a freeze until then): no freeze
        # pending, and the heap unfrozen so that everything is collected as the process ends
        heap.thaw()
        if self.alertmanager is not None:
            await self.alertmanager.stop()
        if self._metrics_httpd is not None:
            self._metrics_httpd.shutdown()
            self._metrics_httpd.server_close()
        self.executor.shutdown(wait=True)
        await asyncio.to_thread(self.store.close)
        self._stopped.set()
        log.info("stopped")


def _credentials(settings: Settings) -> grpc.ServerCredentials | None:
    if not settings.tls_enabled:
        return None
    if settings.tls_key_file is None:
        raise ValueError("tls_cert_file is set but tls_key_file is not")
    key = settings.tls_key_file.read_bytes()
    cert = settings.tls_cert_file.read_bytes()
    ca = settings.tls_client_ca_file.read_bytes() if settings.tls_client_ca_file else None
    return grpc.ssl_server_credentials([(key, cert)], root_certificates=ca, require_client_auth=ca is not None)


async def build_server(settings: Settings) -> tuple[DriftdServer, int]:
    """Build (not start) the server; returns it and the bound gRPC port."""
    store = await asyncio.to_thread(SqliteStore.open_data_dir, settings.data_dir)
    lifecycle = Lifecycle()
    metrics = ServiceMetrics()
    metrics.build_info.info({"version": VERSION, "protocol": "driftd.v1"})
    metrics.monitors.set_function(store.count_monitors)
    import torch

    torch.set_num_threads(settings.torch_threads)
    heap.configure(settings.gc_freeze)
    # Torch work (window updates, evaluations, baseline builds) runs here, never on the event loop.
    executor = ThreadPoolExecutor(max_workers=settings.engine_threads, thread_name_prefix="driftd-engine")
    alarm_hub = AlarmHub(store, retention=settings.alarm_event_retention)
    alarm_manager = AlarmManager(store, alarm_hub)

    metrics.alarm_subscribers.set_function(lambda: alarm_hub.subscriber_count)

    async def on_snapshot(runtime: MonitorRuntime, snapshot: dict) -> None:
        now = datetime.fromtimestamp(snapshot["evaluate_time"], tz=timezone.utc)
        name = f"monitors/{runtime.monitor_id}/snapshots/{snapshot['snapshot_id']}"
        events = await alarm_manager.on_snapshot(runtime.monitor, engine_adapter.metric_frame(snapshot), int(snapshot["row_count"]),
                                                 now, name)
        for event in events:
            metrics.alarm_events.labels(event.payload.get("severity", ""), event.payload.get("state", "")).inc()

    def on_applied(monitor_id: str, rows: int) -> None:
        metrics.rows_applied.labels(monitor_id).inc(rows)

    def on_evaluated(monitor_id: str, seconds: float) -> None:
        metrics.evaluation_seconds.labels(monitor_id).observe(seconds)

    runtimes = Runtimes(store, executor, snapshot_retention=settings.snapshot_retention, on_snapshot=on_snapshot,
                        on_applied=on_applied, on_evaluated=on_evaluated)
    drift_metrics = DriftCollector(
        lambda: [(r.monitor, r.latest_snapshot) for r in runtimes.all()], alarm_manager.firing_counts,
        feature_statistics=settings.metrics_feature_statistics, max_features=settings.metrics_max_features)
    metrics.extra_exposition.append(drift_metrics.exposition)
    metrics.queue_depths = lambda: {r.monitor_id: r.queued_batches for r in runtimes.all()}

    alertmanager = None
    if settings.alertmanager_url:
        alertmanager = AlertmanagerForwarder(settings.alertmanager_url, alarm_hub, alarm_manager, store=store,
                                             resend_interval_s=settings.alertmanager_resend_s,
                                             on_result=lambda outcome, n: metrics.alertmanager_alerts.labels(outcome).inc(n))

    async def monitor_deleted(monitor_id: str) -> None:
        await runtimes.invalidate(monitor_id)
        if alertmanager is not None:  # resolve its open alerts before the engine state goes
            alertmanager.monitor_deleted(monitor_id)
        alarm_manager.forget(monitor_id)
        for family in (metrics.rows_applied, metrics.evaluation_seconds):
            try:
                family.remove(monitor_id)
            except KeyError:
                pass

    options = [
        ("grpc.max_receive_message_length", settings.max_message_bytes),
        ("grpc.max_send_message_length", settings.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.aio.server(interceptors=[MetricsInterceptor(metrics), GuardInterceptor(lifecycle, settings.auth_tokens)], options=options)
    monitor_pb2_grpc.add_MonitorServiceServicer_to_server(
        MonitorServicer(store, on_changed=runtimes.monitor_changed, on_deleted=monitor_deleted), server)
    baseline_pb2_grpc.add_BaselineServiceServicer_to_server(BaselineServicer(
        store, runtimes, executor, runtimes.invalidate, calibration_threads=settings.calibration_threads), server)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(IngestServicer(runtimes, lifecycle, settings.max_batch_bytes, metrics), server)
    snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server(SnapshotServicer(store, runtimes, lifecycle), server)
    alarm_pb2_grpc.add_AlarmServiceServicer_to_server(AlarmServicer(store, alarm_hub, alarm_manager, lifecycle), server)
    health_pb2_grpc.add_HealthServicer_to_server(lifecycle.health, server)
    reflection.enable_server_reflection([*DRIFTD_SERVICES, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
                                         reflection.SERVICE_NAME], server)
    address = f"{settings.host}:{settings.grpc_port}"
    creds = _credentials(settings)
    port = server.add_secure_port(address, creds) if creds else server.add_insecure_port(address)
    if port == 0:
        raise OSError(f"could not bind gRPC address {address}")
    return DriftdServer(settings, server, port, store, lifecycle, metrics, runtimes, alarm_hub, alarm_manager, executor,
                        alertmanager=alertmanager), port

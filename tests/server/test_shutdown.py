"""`driftd serve` as a real process: SIGTERM drains (health NOT_SERVING, open streams end with
UNAVAILABLE "draining"), the store is flushed, the process exits 0 within the grace period."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from driftd.server.store.sqlite import SqliteStore
from driftd.v1 import monitor_pb2 as m, monitor_pb2_grpc

PORT_RE = re.compile(r"serving gRPC on [^:]+:(\d+)")


ROOT = Path(__file__).resolve().parents[2]


def start_serve(data_dir, *extra, launcher: list[str] | None = None) -> tuple[subprocess.Popen, int]:
    proc = subprocess.Popen(
        [*(launcher or [sys.executable, "-m", "driftd.server.cli"]), "serve", "--port", "0", "--metrics-port", "-1",
         "--data-dir", str(data_dir), "--grace-period", "2", *extra],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, "DRIFTD_LOG_FORMAT": "console"},
    )
    deadline = time.monotonic() + 60
    for line in proc.stderr:
        match = PORT_RE.search(line)
        if match:
            return proc, int(match.group(1))
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise AssertionError(f"server did not start; exit code {proc.poll()}")


def test_sigterm_drains_open_stream_and_exits_zero(tmp_path):
    proc, port = start_serve(tmp_path / "data")
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            mon = m.Monitor()
            mon.schema.numeric_features.add(name="x")
            monitor_pb2_grpc.MonitorServiceStub(channel).CreateMonitor(m.CreateMonitorRequest(monitor_id="kept", monitor=mon))

            reflection = reflection_pb2_grpc.ServerReflectionStub(channel)
            listed = next(reflection.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
            names = {s.name for s in listed.list_services_response.service}
            assert {f"driftd.v1.{s}Service" for s in ("Monitor", "Baseline", "Ingest", "Snapshot", "Alarm")} <= names

            watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
            first = next(watch)
            assert first.status == health_pb2.HealthCheckResponse.SERVING

            proc.send_signal(signal.SIGTERM)
            statuses, error = [], None
            try:
                for resp in watch:
                    statuses.append(resp.status)
            except grpc.RpcError as exc:
                error = exc
            assert statuses == [health_pb2.HealthCheckResponse.NOT_SERVING]
            assert error is not None and error.code() == grpc.StatusCode.UNAVAILABLE
            assert "draining" in error.details()
        proc.wait(timeout=2 + 5)
        assert proc.returncode == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # the store was flushed and closed cleanly: the WAL is checkpointed and the monitor is there
    wal = tmp_path / "data" / "driftd.sqlite3-wal"
    assert not wal.exists() or wal.stat().st_size == 0
    store = SqliteStore.open_data_dir(tmp_path / "data")
    assert store.get_monitor("kept").spec.schema.numeric[0].name == "x"
    store.close()


def test_readme_serve_command_answers_health_and_reflection(tmp_path):
    """`bash scripts/driftd.sh serve`, the README's command (its venv is the one the tests run in)."""
    proc, port = start_serve(tmp_path / "data", launcher=["bash", str(ROOT / "scripts" / "driftd.sh")])
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            assert health.status == health_pb2.HealthCheckResponse.SERVING
            listed = next(reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
                iter([reflection_pb2.ServerReflectionRequest(list_services="")])))
            names = {s.name for s in listed.list_services_response.service}
            assert {f"driftd.v1.{s}Service" for s in ("Monitor", "Baseline", "Ingest", "Snapshot", "Alarm")} <= names
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_sigint_also_exits_zero(tmp_path):
    proc, port = start_serve(tmp_path / "data")
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=10) == 0


def test_bad_config_is_one_line_and_exit_2(tmp_path):
    result = subprocess.run([sys.executable, "-m", "driftd.server.cli", "serve", "--port", "70000", "--data-dir", str(tmp_path)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert "invalid configuration" in result.stderr and "Traceback" not in result.stderr

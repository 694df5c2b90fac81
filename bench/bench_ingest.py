"""Ingest benchmarks (issue 5), one run, same machine, same client code for every target.

(a) rows/s of 32-float rows from one client process over loopback, per batch size, into driftd
    (rows counted in a snapshot = applied, not merely acknowledged) and into a bare gRPC server that
    only acknowledges the same bytes; reported as a ratio.
(b) `monitor.log()` single-row call cost p50 / p99, and memory while the server is down.
(c) ingest rate while snapshots with MMD are being evaluated vs idle.

    python bench/bench_ingest.py [--rows 2000000] [--out bench/results/ingest_cpu.csv]

Servers run as separate processes (`driftd serve` and this file's `--bare` mode).
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import re
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from driftd.client import Client
from driftd.v1 import ingest_pb2, ingest_pb2_grpc, monitor_pb2, monitor_pb2_grpc

FEATURES = 32
ROW_BYTES = FEATURES * 4


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- the bare server: acks the same bytes, does nothing else ----------------------------------------

class BareMonitors(monitor_pb2_grpc.MonitorServiceServicer):
    async def GetMonitor(self, request, context):
        mon = monitor_pb2.Monitor(name=request.name)
        for k in range(FEATURES):
            mon.schema.numeric_features.add(name=f"f{k}")
        return monitor_pb2.GetMonitorResponse(monitor=mon)


class BareIngest(ingest_pb2_grpc.IngestServiceServicer):
    async def StreamBatches(self, request_iterator, context):
        async for req in request_iterator:
            b = req.batch
            rows = b.numeric.shape[0] if b.numeric.shape else 0
            ack = ingest_pb2.BatchAck(producer_id=b.producer_id, sequence=b.sequence, accepted_rows=rows)
            ack.status.code = 0
            yield ingest_pb2.StreamBatchesResponse(ack=ack)


async def serve_bare(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    monitor_pb2_grpc.add_MonitorServiceServicer_to_server(BareMonitors(), server)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(BareIngest(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print(f"bare serving on {port}", flush=True)
    await server.wait_for_termination()


# -- harness ---------------------------------------------------------------------------------------

def start(cmd: list[str], ready: str, env=None) -> subprocess.Popen:
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        if ready in line:
            return proc
        if time.monotonic() > deadline:
            break
    proc.kill()
    raise RuntimeError(f"{cmd} did not start")


def setup_driftd(target: str, monitor_id: str, embeddings: bool, eval_s: float) -> None:
    rng = np.random.default_rng(0)
    with Client(target) as client:
        # one trivial rule instead of the default pack: the benchmark measures ingest, not alarms
        rule_free = [monitor_pb2.AlarmRule(rule_id="rows", severity=monitor_pb2.SEVERITY_P3, metric=monitor_pb2.MetricCondition(
            selector="row_count", direction=monitor_pb2.DIRECTION_BELOW, fixed_threshold=0))]
        client.create_monitor(monitor_id, numeric=[f"f{k}" for k in range(FEATURES)], embeddings={"e": 64} if embeddings else None,
                              pane_seconds=3600, pane_count=2, rules=rule_free)
        data = {f"f{k}": rng.normal(size=20_000).astype(np.float32) for k in range(FEATURES)}
        client.create_baseline(monitor_id, data, embeddings={"e": rng.normal(size=(20_000, 64)).astype(np.float32)} if embeddings else None)
    if eval_s:
        set_eval_interval(target, monitor_id, eval_s)


def set_eval_interval(target: str, monitor_id: str, seconds: float) -> None:
    from google.protobuf import field_mask_pb2

    mon = monitor_pb2.Monitor(name=f"monitors/{monitor_id}")
    mon.window.pane_duration.seconds = 3600
    mon.window.pane_count = 2
    mon.window.evaluation_interval.FromMilliseconds(int(seconds * 1000))
    with grpc.insecure_channel(target) as ch:
        monitor_pb2_grpc.MonitorServiceStub(ch).UpdateMonitor(
            monitor_pb2.UpdateMonitorRequest(monitor=mon, update_mask=field_mask_pb2.FieldMask(paths=["window"])))


def push(target: str, monitor_id: str, batch_rows: int, total_rows: int, embeddings: bool = False) -> tuple[float, dict]:
    """Log `total_rows` in numpy blocks of `batch_rows` (one message each); seconds until all acked."""
    rng = np.random.default_rng(1)
    block = rng.normal(size=(batch_rows, FEATURES)).astype(np.float32)
    emb = {"e": rng.normal(size=(batch_rows, 64)).astype(np.float32)} if embeddings else None
    msg = batch_rows * (ROW_BYTES + (256 if embeddings else 0)) + 1024
    with Client(target, min_batch_bytes=msg - 2048, max_batch_bytes=msg, linger_s=0.001, buffer_rows=max(4 * batch_rows, 65_536),
                max_unacked=32) as client:
        monitor = client.monitor(monitor_id)
        t0 = time.perf_counter()
        sent = 0
        while sent < total_rows:
            if monitor.log(block, embeddings=emb):
                sent += batch_rows
            else:
                time.sleep(0.0005)  # buffer full: the benchmark waits instead of dropping
        assert monitor.flush(600)
        elapsed = time.perf_counter() - t0
        return elapsed, vars(monitor.stats).copy()


METRICS_PORT = 0


def wait_applied(target: str, monitor_id: str, expected: int, timeout: float = 600) -> float:
    """Seconds until /metrics says the server applied `expected` rows to the window (not just acked)."""
    import urllib.request

    pattern = re.compile(r'^driftd_rows_applied_total\{monitor="%s"\} ([0-9.e+]+)$' % re.escape(monitor_id), re.M)
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        body = urllib.request.urlopen(f"http://127.0.0.1:{METRICS_PORT}/metrics", timeout=10).read().decode()
        m = pattern.search(body)
        if m and float(m.group(1)) >= expected:
            return time.perf_counter() - t0
        time.sleep(0.005)
    raise TimeoutError(f"{monitor_id}: rows never reached {expected}")


def log_call_cost(target: str, monitor_id: str, calls: int = 100_000) -> tuple[float, float]:
    with Client(target, buffer_rows=calls * 2) as client:
        monitor = client.monitor(monitor_id)
        row = {f"f{k}": 0.5 for k in range(FEATURES)}
        times = np.empty(calls, np.int64)
        for k in range(calls):
            t = time.perf_counter_ns()
            monitor.log(features=row)
            times[k] = time.perf_counter_ns() - t
        monitor.flush(120)
    return float(np.percentile(times, 50) / 1e3), float(np.percentile(times, 99) / 1e3)


def memory_while_down(rows: int = 2_000_000, buffer_rows: int = 100_000) -> tuple[float, float, int]:
    from driftd.client.client import MonitorHandle

    dead = f"127.0.0.1:{free_port()}"
    client = Client(dead, buffer_rows=buffer_rows)
    mon = monitor_pb2.Monitor(name="monitors/down")
    for k in range(FEATURES):
        mon.schema.numeric_features.add(name=f"f{k}")
    handle = MonitorHandle(client, mon)
    block = np.zeros((1000, FEATURES), np.float32)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in range(rows // 1000):
        handle.log(block)
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dropped = handle.stats.rows_dropped
    handle._sender._closing = True
    return before, after, dropped


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/ingest_cpu.csv"))
    ap.add_argument("--bare", type=int, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.bare:
        asyncio.run(serve_bare(ns.bare))
        return 0
    device = f"{platform.processor() or platform.machine()} x{os.cpu_count()} (no GPU)"
    global METRICS_PORT
    bare_port, driftd_port, METRICS_PORT = free_port(), free_port(), free_port()
    data_dir = tempfile.mkdtemp(prefix="driftd-bench-")
    bare = start([sys.executable, __file__, "--bare", str(bare_port)], "bare serving")
    driftd = start([sys.executable, "-m", "driftd.server.cli", "serve", "--port", str(driftd_port), "--metrics-port", str(METRICS_PORT),
                    "--data-dir", data_dir, "--log-level", "warning"], "driftd serving",
                   env={**os.environ, "DRIFTD_LOG_FORMAT": "console"})
    rows_out = []
    try:
        target_d, target_b = f"127.0.0.1:{driftd_port}", f"127.0.0.1:{bare_port}"
        for batch_rows in (256, 1024, 4096, 16384):
            total = ns.rows - ns.rows % batch_rows
            mid = f"ingest-{batch_rows}"
            setup_driftd(target_d, mid, embeddings=False, eval_s=3600)
            bare_s, _ = push(target_b, "bare", batch_rows, total)
            t0 = time.perf_counter()
            acked_s, stats = push(target_d, mid, batch_rows, total)
            applied_s = acked_s + wait_applied(target_d, mid, total)
            row = {"device": device, "benchmark": "ingest_rows_per_s", "batch_rows": batch_rows, "rows": total,
                   "driftd_rows_per_s": round(total / applied_s), "bare_grpc_rows_per_s": round(total / bare_s),
                   "ratio_vs_bare": round(bare_s / applied_s, 3), "retried_batches": stats["batches_retried"]}
            print(row, flush=True)
            rows_out.append(row)
        p50, p99 = log_call_cost(target_b, "bare")
        row = {"device": device, "benchmark": "log_single_row_us", "p50_us": round(p50, 2), "p99_us": round(p99, 2)}
        print(row, flush=True)
        rows_out.append(row)
        before, after, dropped = memory_while_down()
        row = {"device": device, "benchmark": "memory_server_down", "rows_logged": 2_000_000, "buffer_rows": 100_000,
               "rows_dropped": dropped, "max_rss_mib_before": round(before, 1), "max_rss_mib_after": round(after, 1)}
        print(row, flush=True)
        rows_out.append(row)
        # (c) ingest into a numeric monitor while another monitor's MMD snapshots (1024-row sample,
        # 200 permutations, every 0.5 s) are evaluated, vs the same with that monitor idle
        setup_driftd(target_d, "mmd-busy", embeddings=True, eval_s=0.5)
        push(target_d, "mmd-busy", 4096, 40_960, embeddings=True)
        rates = {}
        total = 1_000_000 - 1_000_000 % 4096
        for label in ("idle", "busy"):
            if label == "idle":
                set_eval_interval(target_d, "mmd-busy", 3600)
            else:
                set_eval_interval(target_d, "mmd-busy", 0.5)
            mid = f"during-{label}"
            setup_driftd(target_d, mid, embeddings=False, eval_s=3600)
            acked_s, _ = push(target_d, mid, 4096, total)
            rates[label] = total / (acked_s + wait_applied(target_d, mid, total))
        row = {"device": device, "benchmark": "ingest_during_mmd", "idle_rows_per_s": round(rates["idle"]),
               "during_mmd_rows_per_s": round(rates["busy"]), "ratio": round(rates["busy"] / rates["idle"], 3)}
        print(row, flush=True)
        rows_out.append(row)
    finally:
        for p in (bare, driftd):
            p.terminate()
            p.wait(30)
    ns.out.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted({k for r in rows_out for k in r})
    with open(ns.out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=keys)
        w.writeheader()
        w.writerows(rows_out)
    print(f"wrote {ns.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

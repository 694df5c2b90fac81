"""Python client benchmarks (driftd-client), one process, loopback.

(a) rows/s of 32-float rows through `monitor.log()` of numpy blocks of 256 / 1024 / 4096 / 16384 rows
    (the client coalesces them into 256 KiB - 4 MiB messages), next to the raw generated stub sending
    one message per block on one StreamBatches stream (the reference: what gRPC alone costs).
    Rows count once their ack arrived (flush() returned).
(b) `monitor.log()` single-row cost (perf_counter_ns around each call) p50 / p99 / p99.9.
(c) memory while the server is down: RSS and buffered rows after logging far more rows than
    `buffer_rows` (bounded: the rest is dropped and counted).

    python bench/bench_client.py                       # spawns a bare ack-only grpc.aio server (separate process)
    python bench/bench_client.py --target host:port --create   # a real driftd: creates monitors + baselines first

Writes bench/results/client_cpu.csv and prints a table.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import json
import os
import platform
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import grpc
import numpy as np

from driftd.client import Client
from driftd.v1 import ingest_pb2, ingest_pb2_grpc, monitor_pb2, monitor_pb2_grpc, tensor_pb2

FEATURES = 32
BATCH_SIZES = (256, 1024, 4096, 16384)


def _schema(name: str) -> monitor_pb2.Monitor:
    mon = monitor_pb2.Monitor(name=name)
    if name.endswith("-row"):
        mon.schema.numeric_features.add(name="amount")
        mon.schema.categorical_features.add(name="country", categories=["de", "fr", "us"])
        mon.schema.score_outputs.add(name="p", kind=monitor_pb2.SCORE_KIND_PROBABILITY)
    else:
        for k in range(FEATURES):
            mon.schema.numeric_features.add(name=f"f{k}")
    return mon


# -- bare server: acks the same StreamBatches bytes and does nothing else ---------------------------

class _BareMonitors(monitor_pb2_grpc.MonitorServiceServicer):
    async def GetMonitor(self, request, context):
        return monitor_pb2.GetMonitorResponse(monitor=_schema(request.name))


class _BareIngest(ingest_pb2_grpc.IngestServiceServicer):
    async def StreamBatches(self, request_iterator, context):
        async for req in request_iterator:
            b = req.batch
            rows = b.numeric.shape[0] if b.numeric.shape else 0
            yield ingest_pb2.StreamBatchesResponse(ack=ingest_pb2.BatchAck(
                producer_id=b.producer_id, sequence=b.sequence, accepted_rows=rows))


async def _serve_bare(port: int) -> None:
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", 64 << 20)])
    monitor_pb2_grpc.add_MonitorServiceServicer_to_server(_BareMonitors(), server)
    ingest_pb2_grpc.add_IngestServiceServicer_to_server(_BareIngest(), server)
    server.add_insecure_port(f"127.0.0.1:{port}")
    await server.start()
    print("ready", flush=True)
    await server.wait_for_termination()


def spawn_bare() -> tuple[subprocess.Popen, str]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, __file__, "--serve-bare", str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, f"127.0.0.1:{port}"


# -- measurements ------------------------------------------------------------------------------------

def client_rows_per_s(target: str, monitor: str, batch: int, total: int) -> tuple[float, dict]:
    data = np.random.default_rng(0).normal(size=(batch, FEATURES)).astype(np.float32)
    with Client(target, producer_id=f"bench-{uuid.uuid4().hex[:8]}", buffer_rows=4_000_000) as client:
        mon = client.monitor(monitor)
        t0 = time.perf_counter()
        for _ in range(total // batch):
            mon.log(data)
        assert mon.flush(timeout=300)
        dt = time.perf_counter() - t0
        s = mon.stats
        assert s.rows_dropped == 0 and s.rows_rejected == 0, s
        return s.rows_acked / dt, {"batches": s.batches_sent, "rows": s.rows_acked}


def raw_rows_per_s(target: str, monitor: str, batch: int, total: int) -> float:
    data = np.random.default_rng(0).normal(size=(batch, FEATURES)).astype(np.float32)
    t = tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_FLOAT32, shape=[batch, FEATURES], data=data.tobytes())
    producer, n = f"raw-{uuid.uuid4().hex[:8]}", total // batch
    channel = grpc.insecure_channel(target, [("grpc.max_send_message_length", 64 << 20)])
    stub = ingest_pb2_grpc.IngestServiceStub(channel)

    def requests():
        for seq in range(1, n + 1):  # building the message is part of the cost, as in any client
            yield ingest_pb2.StreamBatchesRequest(batch=ingest_pb2.Batch(
                monitor=f"monitors/{monitor}", producer_id=producer, sequence=seq, numeric=t))

    t0 = time.perf_counter()
    acked = sum(r.ack.accepted_rows for r in stub.StreamBatches(requests()) if r.ack.status.code == 0)
    dt = time.perf_counter() - t0
    channel.close()
    return acked / dt


def single_row_cost(target: str, monitor: str, calls: int) -> dict:
    with Client(target, buffer_rows=calls + 1) as client:
        mon = client.monitor(monitor)
        ns = np.empty(calls, np.int64)
        clock = time.perf_counter_ns
        log = mon.log
        for i in range(calls):
            t = clock()
            log(features={"amount": 12.3, "country": 2}, scores=[0.8], latency_ms=12.0)
            ns[i] = clock() - t
        assert mon.flush(timeout=120)
        assert mon.stats.rows_acked == calls, mon.stats
    return {"p50_us": np.percentile(ns, 50) / 1e3, "p99_us": np.percentile(ns, 99) / 1e3,
            "p999_us": np.percentile(ns, 99.9) / 1e3, "mean_us": ns.mean() / 1e3}


def rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def memory_while_down(monitor: str, buffer_rows: int, rows: int, single: bool) -> dict:
    """Log `rows` rows (single-row dicts, or 1024-row numpy blocks) with the server down."""
    proc, target = spawn_bare()
    client = Client(target, buffer_rows=buffer_rows)
    mon = client.monitor(monitor)
    proc.terminate()
    proc.wait()
    before = rss_mb()
    t0 = time.perf_counter()
    if single:
        for _ in range(rows):
            mon.log(features={"amount": 12.3, "country": 2}, scores=[0.8], latency_ms=12.0)
    else:
        block = np.random.default_rng(0).normal(size=(1024, FEATURES)).astype(np.float32)
        for _ in range(rows // 1024):
            mon.log(block)
    dt = time.perf_counter() - t0
    grown = rss_mb() - before
    time.sleep(6)  # the sender compacts queued single rows into column blocks during its reconnect backoff
    sender = mon._sender
    out = {"input": "single_rows" if single else "blocks_1024", "buffer_rows": buffer_rows, "rows_logged": mon.stats.rows_logged,
           "rows_dropped": mon.stats.rows_dropped, "rows_held": sender._buffered + sender._inflight_rows,
           "rss_growth_mb": grown, "rss_growth_after_6s_idle_mb": rss_mb() - before, "peak_rss_mb": peak_rss_mb(), "log_s": dt}
    client.close(timeout=0.1)
    return out


def peak_rss_mb() -> float:
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--serve-bare", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--memory-case", choices=["blocks", "single"], help=argparse.SUPPRESS)
    ap.add_argument("--repeat", type=int, default=3, help="runs per batch size (the median is reported)")
    ap.add_argument("--target", help="host:port of a server speaking driftd v1 (default: spawn the bare ack-only server)")
    ap.add_argument("--monitor", default="bench32", help="monitor with 32 numeric features f0..f31")
    ap.add_argument("--create", action="store_true", help="create the monitors (+ a baseline) on --target first")
    ap.add_argument("--rows", type=int, default=4_000_000, help="rows per batch-size measurement")
    ap.add_argument("--calls", type=int, default=200_000, help="single-row log() calls")
    ap.add_argument("--buffer-rows", type=int, default=200_000, help="buffer_rows for the memory-while-down runs")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "client_cpu.csv"))
    args = ap.parse_args()
    if args.serve_bare:
        asyncio.run(_serve_bare(args.serve_bare))
        return
    if args.memory_case:
        single = args.memory_case == "single"
        print(json.dumps(memory_while_down(f"{args.monitor}-row" if single else args.monitor, args.buffer_rows, 2_000_000, single)))
        return

    proc = None
    if args.target:
        target, kind = args.target, "target"
    else:
        proc, target = spawn_bare()
        kind = "bare"
    row_monitor = f"{args.monitor}-row"
    if args.create:
        rng = np.random.default_rng(1)
        with Client(target) as c:
            c.create_monitor(args.monitor, numeric=[f"f{k}" for k in range(FEATURES)])
            c.create_baseline(args.monitor, rng.normal(size=(20_000, FEATURES)).astype(np.float32))
            c.create_monitor(row_monitor, numeric=["amount"], categorical={"country": ["de", "fr", "us"]}, scores=["p"])
            c.create_baseline(row_monitor, {"amount": rng.gamma(2, 20, 20_000), "country": rng.integers(0, 3, 20_000)},
                              scores=rng.random((20_000, 1)))
    results = []
    try:
        for batch in BATCH_SIZES:
            raws, clis = [], []
            for _ in range(args.repeat):  # alternate, so drift of the machine hits both alike
                raws.append(raw_rows_per_s(target, args.monitor, batch, args.rows))
                cli, info = client_rows_per_s(target, args.monitor, batch, args.rows)
                clis.append(cli)
            raw, cli = float(np.median(raws)), float(np.median(clis))
            results.append({"measure": "rows_per_s", "server": kind, "batch_rows": batch, "client_rows_per_s": round(cli),
                            "raw_stub_rows_per_s": round(raw), "client_vs_raw": round(cli / raw, 3),
                            "client_messages": info["batches"]})
        cost = single_row_cost(target, row_monitor, args.calls)
        results.append({"measure": "log_single_row_us", "server": kind, **{k: round(v, 2) for k, v in cost.items()}})
    finally:
        if proc is not None:
            proc.terminate()
            proc.wait()
    for case in ("blocks", "single"):  # each in a fresh process, so RSS is not blurred by the runs above
        out = subprocess.run([sys.executable, __file__, "--memory-case", case, "--monitor", args.monitor,
                              "--buffer-rows", str(args.buffer_rows)], capture_output=True, text=True, check=True).stdout
        mem = json.loads(out.strip().splitlines()[-1])
        results.append({"measure": "memory_while_down", "server": "down",
                        **{k: round(v, 2) if isinstance(v, float) else v for k, v in mem.items()}})
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    keys = ["measure", "server", "batch_rows", "client_rows_per_s", "raw_stub_rows_per_s", "client_vs_raw", "client_messages",
            "p50_us", "p99_us", "p999_us", "mean_us", "input", "buffer_rows", "rows_logged", "rows_dropped", "rows_held",
            "rss_growth_mb", "rss_growth_after_6s_idle_mb", "peak_rss_mb", "log_s", "machine"]
    machine = f"{platform.processor() or platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}, grpcio {grpc.__version__}"
    with out.open("w", newline="") as f:
        w = csv.DictWriter(f, keys)
        w.writeheader()
        for r in results:
            w.writerow({**r, "machine": machine})
    for r in results:
        print("  ".join(f"{k}={v}" for k, v in r.items()))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()

"""Node vs Python client throughput on the same server, in the same run.

Rows of 32 float features are logged in blocks of `--chunk` rows (Float32Array blocks through
@driftd/client's `monitor.log()`, numpy [chunk, 32] blocks through driftd.client's) and counted once
`flush()` returned, i.e. every batch was acknowledged. Each client has its own monitor (same spec and
baseline) and its own process; runs alternate Python / Node, `--repeat` times, and the median is
reported. Two servers, one after the other:

* `driftd`: a real `driftd serve` (subprocess, metrics off): end-to-end ingest, server included;
* `bare`: bench/bench_client.py's ack-only gRPC server: what the clients alone cost.

    python bench/bench_node_client.py [--rows 2000000] [--chunk 4096] [--repeat 3] [--servers driftd,bare]

Needs the Node client built (cd clients/node && npm ci && npm run build). Writes
bench/results/node_client_cpu.csv (client, rows, seconds, rows_per_s, ...) and prints the Node/Python ratio.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import grpc
import numpy as np

from driftd.client import Client
from driftd.v1 import monitor_pb2, monitor_pb2_grpc

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
FEATURES = 32


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(target: str, proc: subprocess.Popen) -> None:
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        stub = monitor_pb2_grpc.MonitorServiceStub(channel)
        while True:
            if proc.poll() is not None:
                raise RuntimeError("server exited during startup")
            try:
                stub.GetMonitor(monitor_pb2.GetMonitorRequest(name="monitors/probe"), timeout=1)
                return
            except grpc.RpcError as exc:
                if exc.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.OK):
                    return
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)


def start_driftd(data_dir: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "driftd.server.cli", "serve", "--data-dir", str(data_dir), "--port", str(port),
                             "--metrics-port", "-1", "--grace-period", "1", "--log-level", "warning"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    target = f"127.0.0.1:{port}"
    wait_ready(target, proc)
    return proc, target


def start_bare() -> tuple[subprocess.Popen, str]:
    port = free_port()
    proc = subprocess.Popen([sys.executable, str(HERE / "bench_client.py"), "--serve-bare", str(port)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc, f"127.0.0.1:{port}"


def create_monitor(target: str, monitor_id: str) -> None:
    with Client(target) as client:
        client.create_monitor(monitor_id, numeric=[f"f{k}" for k in range(FEATURES)], pane_seconds=60, pane_count=5)
        ref = np.random.default_rng(1).normal(size=(5000, FEATURES)).astype(np.float32)
        client.create_baseline(monitor_id, ref)


def run_python(target: str, monitor: str, rows: int, chunk: int) -> dict:
    """In a child process of its own, as the Node run is (no shared interpreter state between runs)."""
    code = f"""
import json, time, uuid, numpy as np
from driftd.client import Client
data = np.random.default_rng(0).normal(size=({chunk}, {FEATURES})).astype(np.float32)
with Client({target!r}, producer_id="bench-" + uuid.uuid4().hex[:8], buffer_rows=4_000_000) as client:
    mon = client.monitor({monitor!r})
    c0, t0 = time.process_time(), time.perf_counter()
    for _ in range({rows} // {chunk}):
        assert mon.log(data)
    assert mon.flush(timeout=300)
    dt, cpu = time.perf_counter() - t0, time.process_time() - c0
    s = mon.stats
    assert s.rows_acked == {rows // chunk * chunk} and s.rows_dropped == 0 and s.rows_rejected == 0, s
print(json.dumps({{"rows": s.rows_acked, "seconds": dt, "cpu_s": cpu, "batches": s.batches_sent, "retried": s.batches_retried}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"python run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_node(node: str, target: str, monitor: str, rows: int, chunk: int) -> dict:
    out = subprocess.run([node, str(HERE / "bench_node_client.js"), target, monitor, str(rows), str(chunk)],
                         capture_output=True, text=True, timeout=600)
    if out.returncode != 0:
        raise RuntimeError(f"node run failed:\n{out.stderr}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> str:
    node = subprocess.run(["node", "--version"], capture_output=True, text=True).stdout.strip()
    return f"{platform.machine()} {os.cpu_count()} cpu, python {platform.python_version()}, node {node}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=2_000_000)
    ap.add_argument("--chunk", type=int, default=4096, help="rows per log() call")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--servers", default="driftd,bare")
    ap.add_argument("--node", default=os.environ.get("NODE", "node"))
    ap.add_argument("--out", default=str(HERE / "results" / "node_client_cpu.csv"))
    args = ap.parse_args()
    if not (ROOT / "clients" / "node" / "dist" / "src" / "index.js").exists():
        print("build the Node client first: cd clients/node && npm ci && npm run build", file=sys.stderr)
        return 2
    rows = args.rows // args.chunk * args.chunk
    results = []
    for server in args.servers.split(","):
        tmp = tempfile.TemporaryDirectory(prefix="driftd-bench-node-")
        proc, target = start_driftd(Path(tmp.name) / "data") if server == "driftd" else start_bare()
        try:
            mon_py, mon_node = ("bench32", "bench32") if server == "bare" else (f"py-{uuid.uuid4().hex[:6]}", f"node-{uuid.uuid4().hex[:6]}")
            if server == "driftd":
                create_monitor(target, mon_py)
                create_monitor(target, mon_node)
            runs: dict[str, list[dict]] = {"python": [], "node": []}
            for _ in range(args.repeat):
                runs["python"].append(run_python(target, mon_py, rows, args.chunk))
                runs["node"].append(run_node(args.node, target, mon_node, rows, args.chunk))
            for client, rs in runs.items():
                secs = statistics.median(r["seconds"] for r in rs)
                cpu = statistics.median(r["cpu_s"] for r in rs)
                results.append({"client": client, "rows": rows, "seconds": round(secs, 4), "rows_per_s": round(rows / secs),
                                "server": server, "chunk_rows": args.chunk, "client_cpu_s": round(cpu, 4),
                                "batches": rs[0]["batches"], "retried_batches": max(r["retried"] for r in rs), "repeats": args.repeat,
                                "machine": machine()})
        finally:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
            tmp.cleanup()
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    with open(args.out, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(results[0]))
        w.writeheader()
        w.writerows(results)
    print(f"{'server':8} {'client':7} {'rows':>9} {'seconds':>8} {'rows/s':>11} {'client cpu s':>12}")
    for r in results:
        print(f"{r['server']:8} {r['client']:7} {r['rows']:>9} {r['seconds']:>8.3f} {r['rows_per_s']:>11,} {r['client_cpu_s']:>12.3f}")
    for server in args.servers.split(","):
        by = {r["client"]: r for r in results if r["server"] == server}
        print(f"{server}: node / python throughput = {by['node']['rows_per_s'] / by['python']['rows_per_s']:.2f}")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Alarm latency (issue 6): from the ack of the batch that makes a rule true to the firing event
reaching subscribers, over >= 100 trials, with 1,000 subscribers connected.

    python bench/bench_alarms.py [--trials 100] [--subscribers 1000] [--out bench/results/alarms_cpu.csv]

The server runs in this process; the subscribers run in `--subscriber-procs` separate processes
(default 2) so their client work does not share the server's event loop; arrival times are wall
clock (same machine). Each trial sends one batch whose latency values make `latency_p99_ms > 1000`
true; the next evaluation fires the alarm; the following empty panes resolve it before the next trial.
"""

from __future__ import annotations

import argparse
import asyncio
import csv
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import grpc
import numpy as np

from driftd.server.app import build_server
from driftd.server.config import Settings
from driftd.server.transport.codec import encode_tensor
from driftd.v1 import alarm_pb2, alarm_pb2_grpc, baseline_pb2, baseline_pb2_grpc, ingest_pb2, ingest_pb2_grpc, monitor_pb2 as m, monitor_pb2_grpc

EVAL_S = 0.25


async def subscriber_proc(target: str, count: int, out_path: str) -> None:
    """Run `count` subscribers; append 'sequence time' per firing event to out_path; print READY."""
    channels = [grpc.aio.insecure_channel(target) for _ in range(max(1, count // 125))]
    ready = 0
    fh = open(out_path, "w", buffering=1)

    async def one(k: int) -> None:
        nonlocal ready
        call = alarm_pb2_grpc.AlarmServiceStub(channels[k % len(channels)]).SubscribeAlarms(alarm_pb2.SubscribeAlarmsRequest())
        await call.wait_for_connection()
        ready += 1
        async for resp in call:
            if resp.HasField("event") and resp.event.state == alarm_pb2.ALARM_STATE_FIRING:
                fh.write(f"{resp.event.sequence} {time.time()} {resp.event.event_time.ToNanoseconds() / 1e9}\n")

    tasks = [asyncio.create_task(one(k)) for k in range(count)]
    while ready < count:
        await asyncio.sleep(0.05)
    print("READY", flush=True)
    await asyncio.gather(*tasks, return_exceptions=True)


async def main_async(trials: int, subscribers: int, out: Path, procs: int = 2) -> None:
    server, port = await build_server(Settings(data_dir=Path(tempfile.mkdtemp()), grpc_port=0, metrics_port=-1, grace_period_s=1))
    await server.start()
    target = f"127.0.0.1:{port}"
    admin = grpc.aio.insecure_channel(target)
    mon = m.Monitor()
    mon.schema.numeric_features.add(name="x")
    mon.window.pane_duration.FromMilliseconds(int(EVAL_S * 1000))
    mon.window.pane_count = 2
    mon.window.evaluation_interval.FromMilliseconds(int(EVAL_S * 1000))
    r = mon.rules.add(rule_id="latency", severity=m.SEVERITY_P2, min_samples=1)
    r.metric.selector = "latency_p99_ms"
    r.metric.direction = m.DIRECTION_ABOVE
    r.metric.fixed_threshold = 1000
    await monitor_pb2_grpc.MonitorServiceStub(admin).CreateMonitor(m.CreateMonitorRequest(monitor_id="lat", monitor=mon))
    rng = np.random.default_rng(0)

    async def ref():
        yield baseline_pb2.CreateBaselineRequest(header=baseline_pb2.BaselineHeader(parent="monitors/lat", activate=True))
        b = ingest_pb2.Batch()
        b.numeric.CopyFrom(encode_tensor(rng.normal(size=(2000, 1)).astype(np.float32)))
        yield baseline_pb2.CreateBaselineRequest(batch=b)

    await baseline_pb2_grpc.BaselineServiceStub(admin).CreateBaseline(ref())

    import subprocess

    tmpdir = Path(tempfile.mkdtemp())
    files = [tmpdir / f"arrivals-{k}.txt" for k in range(procs)]
    workers = [subprocess.Popen([sys.executable, __file__, "--subscriber", target, str(subscribers // procs), str(f)],
                                stdout=subprocess.PIPE, text=True) for f in files]
    for w in workers:
        loop = asyncio.get_running_loop()
        line = await loop.run_in_executor(None, w.stdout.readline)
        assert line.strip() == "READY", line
    await asyncio.sleep(0.5)

    evaluated_at: dict[int, float] = {}

    def arrivals() -> dict[int, list[float]]:
        out: dict[int, list[float]] = {}
        for f in files:
            for line in f.read_text().splitlines():
                seq, t, evaluated = line.split()
                out.setdefault(int(seq), []).append(float(t))
                evaluated_at[int(seq)] = float(evaluated)
        return out

    ingest = ingest_pb2_grpc.IngestServiceStub(admin)
    first, last, to_eval = [], [], []
    expected = (subscribers // procs) * procs
    for trial in range(trials):
        b = ingest_pb2.Batch(monitor="monitors/lat", producer_id="bench", sequence=trial + 1)
        b.numeric.CopyFrom(encode_tensor(rng.normal(size=(50, 1)).astype(np.float32)))
        b.latency_ms.CopyFrom(encode_tensor(np.full(50, 5000.0, np.float32)))
        before = set(arrivals())
        ack = (await ingest.WriteBatch(ingest_pb2.WriteBatchRequest(batch=b))).ack
        t_ack = time.time()
        assert ack.status.code == 0, ack.status
        deadline = t_ack + 10
        got: dict[int, list[float]] = {}
        while time.time() < deadline:
            got = arrivals()
            new = set(got) - before
            if new and len(got[max(new)]) >= expected:
                break
            await asyncio.sleep(0.01)
        seq = max(set(got) - before)
        times = got[seq]
        first.append(min(times) - t_ack)
        last.append(max(times) - t_ack)
        to_eval.append(evaluated_at[seq] - t_ack)
        await asyncio.sleep(4 * EVAL_S)  # the next panes are empty: the alarm resolves
    for w in workers:
        w.kill()
        w.wait()
    await admin.close()
    await server.drain_and_stop(1)
    device = f"{platform.processor() or platform.machine()} x{os.cpu_count()} (no GPU)"
    row = {
        "device": device, "trials": trials, "subscribers": (subscribers // procs) * procs, "subscriber_processes": procs,
        "evaluation_interval_s": EVAL_S,
        "first_subscriber_p50_ms": round(float(np.percentile(first, 50)) * 1e3, 1),
        "first_subscriber_p99_ms": round(float(np.percentile(first, 99)) * 1e3, 1),
        "all_subscribers_p50_ms": round(float(np.percentile(last, 50)) * 1e3, 1),
        "all_subscribers_p99_ms": round(float(np.percentile(last, 99)) * 1e3, 1),
        "ack_to_evaluation_p50_ms": round(float(np.percentile(to_eval, 50)) * 1e3, 1),
        "ack_to_evaluation_p99_ms": round(float(np.percentile(to_eval, 99)) * 1e3, 1),
        "goal_p99_ms": EVAL_S * 1e3 + 100,
    }
    print(row)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerow(row)
    print(f"wrote {out}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/alarms_cpu.csv"))
    ap.add_argument("--subscriber-procs", type=int, default=2)
    ap.add_argument("--subscriber", nargs=3, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.subscriber:
        target, count, path = ns.subscriber
        asyncio.run(subscriber_proc(target, int(count), path))
        return 0
    asyncio.run(main_async(ns.trials, ns.subscribers, ns.out, ns.subscriber_procs))
    return 0


if __name__ == "__main__":
    sys.exit(main())

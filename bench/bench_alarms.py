"""Alarm latency (issue 6): from the ack of the batch that makes a rule true to the firing event
reaching subscribers, over >= 100 trials, with 1,000 subscribers connected.

    python bench/bench_alarms.py [--trials 100] [--subscribers 1000] [--out bench/results/alarms_cpu.csv]
                                 [--trace] [--no-gc-freeze]

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
import random
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


class Tracer:
    """Wall-clock stage timestamps inside the server (this process), for the latency breakdown:
    wraps the runtime's evaluation steps, the alarm manager, the hub's append and its fan-out, and
    probes the event loop's lag (how late a 5 ms sleep wakes)."""

    def __init__(self) -> None:
        self.calls: dict[str, list[tuple[float, float]]] = {}
        self.lag: list[tuple[float, float]] = []
        self.gc: list[tuple[float, float, int]] = []  # (start, end, generation)
        self._gc_start = 0.0

    def wrap(self, owner, name: str, label: str) -> None:
        fn = getattr(owner, name)
        calls = self.calls.setdefault(label, [])
        if asyncio.iscoroutinefunction(fn):
            async def wrapped(*a, **k):
                t0 = time.time()
                try:
                    return await fn(*a, **k)
                finally:
                    calls.append((t0, time.time()))
        else:
            def wrapped(*a, **k):
                t0 = time.time()
                try:
                    return fn(*a, **k)
                finally:
                    calls.append((t0, time.time()))
        setattr(owner, name, wrapped)

    def install(self) -> None:
        from driftd.server.domain.alarms import AlarmEngine
        from driftd.server.service import alarm_hub, alarm_manager, engine_adapter
        from driftd.server.store.sqlite import SqliteStore

        self.wrap(engine_adapter.WindowAdapter, "evaluate", "window_evaluate")
        self.wrap(engine_adapter.WindowAdapter, "update", "window_update")
        self.wrap(SqliteStore, "put_snapshot", "snapshot_persist")
        self.wrap(alarm_manager.AlarmManager, "on_snapshot", "alarm_on_snapshot")
        self.wrap(AlarmEngine, "evaluate", "alarm_engine")
        self.wrap(SqliteStore, "append_alarm_events", "event_append")
        self.wrap(alarm_hub.AlarmHub, "publish", "publish")
        import gc

        def on_gc(phase, info):
            if phase == "start":
                self._gc_start = time.time()
            else:
                self.gc.append((self._gc_start, time.time(), info["generation"]))
        gc.callbacks.append(on_gc)

    async def probe(self) -> None:
        while True:
            t0 = time.perf_counter()
            await asyncio.sleep(0.005)
            late = time.perf_counter() - t0 - 0.005
            self.lag.append((time.time(), late))

    def first_after(self, label: str, t: float, until: float) -> tuple[float, float] | None:
        for c in self.calls.get(label, ()):
            if t <= c[0] <= until:
                return c
        return None

    def max_lag(self, t0: float, t1: float) -> float:
        return max((late for t, late in self.lag if t0 <= t <= t1), default=0.0)


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


async def main_async(trials: int, subscribers: int, out: Path, procs: int = 2, trace: bool = False,
                     gc_freeze: bool = True) -> None:
    tracer = Tracer() if trace else None
    if tracer is not None:
        tracer.install()
    server, port = await build_server(Settings(data_dir=Path(tempfile.mkdtemp()), grpc_port=0, metrics_port=-1, grace_period_s=1,
                                               gc_freeze=gc_freeze))
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
    # Warm-up: one quiet batch (latencies far below the threshold) and its evaluations, so the
    # first trial does not pay the one-off torch.compile of the CPU kernels.
    warm = ingest_pb2.Batch(monitor="monitors/lat", producer_id="bench-warm-up", sequence=1)
    warm.numeric.CopyFrom(encode_tensor(rng.normal(size=(50, 1)).astype(np.float32)))
    warm.latency_ms.CopyFrom(encode_tensor(np.full(50, 5.0, np.float32)))
    await ingest_pb2_grpc.IngestServiceStub(admin).WriteBatch(ingest_pb2.WriteBatchRequest(batch=warm))
    await asyncio.sleep(4 * EVAL_S)
    if gc_freeze:
        # The server freezes its long-lived heap (torch, the compiled kernels, protobuf descriptors)
        # once its warm-ups are over (server/heap.py, debounced): wait for it, as a warm server would have.
        import gc

        for _ in range(100):
            if gc.get_freeze_count():
                break
            await asyncio.sleep(0.1)
        print(f"server heap frozen: {gc.get_freeze_count()} objects")

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
    got: dict[int, list[float]] = {}
    readers = [open(f) for f in files]
    partial = [""] * len(readers)

    def arrivals() -> dict[int, list[float]]:
        """Fold in the lines the subscribers appended since the last call (incrementally: this runs
        on the server's event loop every 10 ms, so it must stay cheap as the files grow)."""
        for k, fh in enumerate(readers):
            chunk = partial[k] + fh.read()
            lines = chunk.split("\n")
            partial[k] = lines.pop()  # an incomplete last line waits for the next call
            for line in lines:
                seq, t, evaluated = line.split()
                got.setdefault(int(seq), []).append(float(t))
                evaluated_at[int(seq)] = float(evaluated)
        return got

    ingest = ingest_pb2_grpc.IngestServiceStub(admin)
    first, last, to_eval = [], [], []
    stages: list[dict[str, float]] = []
    probe = asyncio.create_task(tracer.probe()) if tracer is not None else None
    expected = (subscribers // procs) * procs
    phase = random.Random(1)
    for trial in range(trials):
        b = ingest_pb2.Batch(monitor="monitors/lat", producer_id="bench", sequence=trial + 1)
        b.numeric.CopyFrom(encode_tensor(rng.normal(size=(50, 1)).astype(np.float32)))
        b.latency_ms.CopyFrom(encode_tensor(np.full(50, 5000.0, np.float32)))
        before = set(arrivals())
        ack = (await ingest.WriteBatch(ingest_pb2.WriteBatchRequest(batch=b))).ack
        t_ack = time.time()
        assert ack.status.code == 0, ack.status
        deadline = t_ack + 10
        while time.time() < deadline:
            arrivals()
            new = set(got) - before
            if new and len(got[max(new)]) >= expected:
                break
            await asyncio.sleep(0.01)
        seq = max(set(got) - before)
        times = got[seq]
        first.append(min(times) - t_ack)
        last.append(max(times) - t_ack)
        to_eval.append(evaluated_at[seq] - t_ack)
        if tracer is not None:
            tick, end = evaluated_at[seq], max(times)
            row = {"ack": t_ack, "tick": tick, "first": min(times), "all": end, "trial": trial}
            for label in ("window_evaluate", "snapshot_persist", "alarm_on_snapshot", "alarm_engine", "event_append", "publish"):
                c = tracer.first_after(label, tick - 0.001, end)
                if c is not None:
                    row[label + "_start"], row[label + "_end"] = c
            row["max_loop_lag"] = tracer.max_lag(t_ack, end)
            row["window_update_ms"] = sum(e - b for b, e in tracer.calls["window_update"] if t_ack - 0.3 <= b <= end) * 1e3
            row["gc_ms"] = sum(e - b for b, e, g in tracer.gc if t_ack <= b <= end) * 1e3
            row["gc2_ms"] = sum(e - b for b, e, g in tracer.gc if t_ack <= b <= end and g == 2) * 1e3
            stages.append(row)
        # the next panes are empty: the alarm resolves; the random part spreads the next ack
        # uniformly over the evaluation cadence (else its phase follows the bench's own timing)
        await asyncio.sleep(4 * EVAL_S + phase.uniform(0, EVAL_S))
    for fh in readers:
        fh.close()
    if probe is not None:
        probe.cancel()
        import gc

        full = [(b, e) for b, e, g in tracer.gc if g == 2 and b >= stages[0]["ack"]] if stages else []
        acks = [r["ack"] for r in stages]
        print("full collections, ms after the preceding ack (duration):",
              [(round((b - max(a for a in acks if a <= b)) * 1e3), round((e - b) * 1e3)) for b, e in full])
        n = len(gc.get_objects())
        t0 = time.perf_counter()
        gc.collect()
        print(f"full collections from the first trial on: {len(full)}, {sum(e - b for b, e in full) * 1e3:.0f} ms in all; "
              f"in a trial's ack -> last subscriber window: {sum(1 for r in stages if r['gc2_ms'] > 0)} trials")
        print(f"heap: {n} gc-tracked objects, a full collection now takes {(time.perf_counter() - t0) * 1e3:.1f} ms; "
              f"frozen: {gc.get_freeze_count()}")
    if stages:
        print_breakdown(stages)
    for w in workers:
        w.kill()
        w.wait()
    await admin.close()
    await server.drain_and_stop(1)
    device = f"{platform.processor() or platform.machine()} x{os.cpu_count()} (no GPU)"
    row = {
        "device": device, "server_gc": "gc_freeze=true (default)" if gc_freeze else "gc_freeze=false",
        "trials": trials, "subscribers": (subscribers // procs) * procs, "subscriber_processes": procs,
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
    rows = []
    if out.exists():  # one row per server_gc setting: replace this setting's row, keep the other
        with open(out, newline="") as fh:
            rows = [r for r in csv.DictReader(fh) if r.get("server_gc") and r["server_gc"] != row["server_gc"]]
    rows.append(row)
    rows.sort(key=lambda r: r["server_gc"] != "gc_freeze=true (default)")
    with open(out, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(row))
        w.writeheader()
        w.writerows(rows)
    print(f"wrote {out}")


def print_breakdown(stages: list[dict[str, float]]) -> None:
    """Per-stage durations (ms), p50 / p90 / p99 / max over the trials, and the stage means of the
    slowest 5 % of trials (by all-subscribers latency)."""
    steps = [
        ("ack -> tick", "ack", "tick"),
        ("tick -> window evaluate start", "tick", "window_evaluate_start"),
        ("window evaluate", "window_evaluate_start", "window_evaluate_end"),
        ("-> snapshot persist start", "window_evaluate_end", "snapshot_persist_start"),
        ("snapshot persist", "snapshot_persist_start", "snapshot_persist_end"),
        ("-> alarm manager start", "snapshot_persist_end", "alarm_on_snapshot_start"),
        ("alarm manager -> engine start", "alarm_on_snapshot_start", "alarm_engine_start"),
        ("alarm engine", "alarm_engine_start", "alarm_engine_end"),
        ("engine end -> publish start", "alarm_engine_end", "publish_start"),
        ("publish start -> append start", "publish_start", "event_append_start"),
        ("event append (sqlite)", "event_append_start", "event_append_end"),
        ("append end -> fan-out done", "event_append_end", "publish_end"),
        ("fan-out done -> first subscriber", "publish_end", "first"),
        ("first -> all subscribers", "first", "all"),
        ("tick -> all subscribers", "tick", "all"),
    ]
    slow = sorted(stages, key=lambda r: r["all"] - r["ack"])[-max(1, len(stages) // 20):]
    print(f"{'stage':36s} {'p50':>7s} {'p90':>7s} {'p99':>7s} {'max':>7s} {'slow5%':>7s}")
    for name, a, b in steps:
        vals = [(r[b] - r[a]) * 1e3 for r in stages if a in r and b in r]
        if not vals:
            continue
        sv = [(r[b] - r[a]) * 1e3 for r in slow if a in r and b in r]
        print(f"{name:36s} {np.percentile(vals, 50):7.1f} {np.percentile(vals, 90):7.1f} {np.percentile(vals, 99):7.1f} "
              f"{max(vals):7.1f} {np.mean(sv) if sv else float('nan'):7.1f}")
    for r in slow:
        print("slow trial:", {k: round((v - r["ack"]) * 1e3, 1) if k not in ("max_loop_lag", "gc_ms", "gc2_ms", "window_update_ms", "trial")
                              else round(v * (1e3 if k == "max_loop_lag" else 1), 1) for k, v in r.items()})
    print("trials with a full collection in their window:", [r["trial"] for r in stages if r["gc2_ms"] > 0])
    for key in ("gc_ms", "gc2_ms", "window_update_ms"):
        vals = [r[key] for r in stages]
        print(f"{'gc ' + key + ' in trial':36s} {np.percentile(vals, 50):7.1f} {np.percentile(vals, 90):7.1f} "
              f"{np.percentile(vals, 99):7.1f} {max(vals):7.1f} {np.mean([r[key] for r in slow]):7.1f}")
    lag = [r["max_loop_lag"] * 1e3 for r in stages]
    print(f"{'max event-loop lag in trial':36s} {np.percentile(lag, 50):7.1f} {np.percentile(lag, 90):7.1f} "
          f"{np.percentile(lag, 99):7.1f} {max(lag):7.1f}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--subscribers", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=Path("bench/results/alarms_cpu.csv"))
    ap.add_argument("--subscriber-procs", type=int, default=2)
    ap.add_argument("--no-gc-freeze", dest="gc_freeze", action="store_false",
                    help="serve with gc_freeze=false (no heap freeze after warm-ups) to measure what it buys")
    ap.add_argument("--trace", action="store_true", help="print a per-stage latency breakdown (wraps server internals)")
    ap.add_argument("--subscriber", nargs=3, help=argparse.SUPPRESS)
    ns = ap.parse_args()
    if ns.subscriber:
        target, count, path = ns.subscriber
        asyncio.run(subscriber_proc(target, int(count), path))
        return 0
    asyncio.run(main_async(ns.trials, ns.subscribers, ns.out, ns.subscriber_procs, ns.trace, ns.gc_freeze))
    return 0


if __name__ == "__main__":
    sys.exit(main())

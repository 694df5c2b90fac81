#!/usr/bin/env python3
"""Cross-language conformance: the same seeded scenario through the Python and the Node client.

One driftd server; two monitors with the same spec (each created by its own client), the same
baseline and the same rows (generated once here with a fixed seed and written to a JSON file the
Node side reads). Each client drives its monitor in lock-step with the server's evaluations:

    wait for an evaluation -> log one step of rows -> flush -> the next evaluation must count
    exactly the rows logged so far (checked: otherwise the lock-step broke and the run is retried)

so every evaluation of both monitors sees the same rows. The scenario has a normal phase and a
drift phase that fires alarms. At the end the script compares, per evaluation, every field of the
snapshots (statistics to 1e-12; ids, names and timestamps ignored) and the alarm event sequences
(rule, labels, kind, severity, state transitions, value, threshold, order, and which evaluation
caused them). Exit 0 when identical; exit 1 with the differences printed.

    python clients/conformance/run.py [--keep DIR] [--node node]

Needs the driftd venv (server + Python client) and a built Node client (clients/node: npm ci &&
npm run build).
"""

from __future__ import annotations

import argparse
import base64
import json
import math
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime, timezone
from pathlib import Path

import grpc
import numpy as np
from google.protobuf import field_mask_pb2
from google.protobuf.message import Message

from driftd.client import Client
from driftd.client.alarms import Subscription, subscribe_alarms
from driftd.v1 import alarm_pb2, monitor_pb2, monitor_pb2_grpc, snapshot_pb2

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SEED = 20261125
PANE_SECONDS = 86_400  # one pane holds the whole run: every evaluation sees every row logged so far
EVALUATION_SECONDS = 1.5
NUMERIC = ["f0", "f1", "f2", "f3"]
CATEGORIES = ["de", "fr", "us"]
EMBED_DIM = 4
TOL = 1e-12
# Fields that name or time things, not statistics: ignored in the comparison.
IGNORED = {"name", "baseline", "window_start", "window_end", "evaluate_time"}


class LockstepBroken(RuntimeError):
    """An evaluation saw a different number of rows than logged (timing, not a client difference)."""


# -- the scenario ------------------------------------------------------------------------------

def rules() -> list[monitor_pb2.AlarmRule]:
    out = []
    r = monitor_pb2.AlarmRule(rule_id="f0-psi", min_samples=100, for_evaluations=1, severity=monitor_pb2.SEVERITY_P2,
                              summary="psi of {feature} is {value}", labels={"team": "risk"})
    r.metric.selector = 'feature_psi{feature="f0"}'
    r.metric.direction = monitor_pb2.DIRECTION_ABOVE
    r.metric.fixed_threshold = 0.1
    out.append(r)
    r = monitor_pb2.AlarmRule(rule_id="drifted", min_samples=100, severity=monitor_pb2.SEVERITY_P3, summary="{value} drifted features")
    r.metric.selector = "drifted_features"
    r.metric.direction = monitor_pb2.DIRECTION_ABOVE
    r.metric.fixed_threshold = 0
    out.append(r)
    r = monitor_pb2.AlarmRule(rule_id="score-ks", min_samples=100, severity=monitor_pb2.SEVERITY_P3, summary="score ks {value}")
    r.metric.selector = "score_ks"
    r.metric.direction = monitor_pb2.DIRECTION_ABOVE
    r.metric.calibrated_threshold = monitor_pb2.CALIBRATED_LEVEL_CRITICAL
    out.append(r)
    r = monitor_pb2.AlarmRule(rule_id="page", severity=monitor_pb2.SEVERITY_P1, summary="drift and score shift")
    r.composite.mode = monitor_pb2.COMPOSITE_MODE_ALL
    r.composite.rule_ids.extend(["f0-psi", "score-ks"])
    out.append(r)
    return out


def statistics() -> monitor_pb2.StatisticsConfig:
    # reservoirs larger than the run: KS / W1 see every row
    return monitor_pb2.StatisticsConfig(reservoir_size=16384, embedding_sample_size=512, mmd_permutations=50)


def _rows(rng: np.random.Generator, n: int, drift: float) -> dict:
    numeric = rng.normal(size=(n, len(NUMERIC))).astype(np.float32)
    numeric[:, 0] += np.float32(drift * 1.5)
    numeric[:, 2] *= np.float32(1 + drift)
    numeric[rng.random(n) < 0.01, 1] = np.nan
    probs = np.array([0.5, 0.3, 0.2]) if drift == 0 else np.array([0.2, 0.3, 0.5])
    country = rng.choice(CATEGORIES, size=n, p=probs).astype(object)
    country[rng.random(n) < 0.01] = "xx"  # unseen
    country[rng.random(n) < 0.01] = None  # missing
    emb = rng.normal(loc=drift * 0.5, size=(n, EMBED_DIM)).astype(np.float32)
    scores = (1 / (1 + np.exp(-(numeric[:, 0] * 0.8 + rng.normal(size=n) * 0.3)))).astype(np.float32)
    latency = rng.gamma(2.0, 10.0 + 10 * drift, size=n).astype(np.float32)
    status = np.where(rng.random(n) < 0.02 + 0.05 * drift, 503, 200).astype(np.int32)
    return {"numeric": numeric, "country": country, "emb": emb, "scores": scores, "latency": latency, "status": status}


def make_scenario() -> dict:
    rng = np.random.default_rng(SEED)
    baseline = _rows(rng, 4000, 0.0)
    steps = []
    plan = [("rows", 600, 0.0), ("block", 1500, 0.0), ("rows", 400, 0.0), ("block", 1500, 0.0),
            ("block", 1500, 1.0), ("rows", 500, 1.0), ("block", 2000, 1.0), ("block", 2000, 1.0)]
    for i, (mode, n, drift) in enumerate(plan):
        rows = _rows(rng, n, drift)
        rows["request_ids"] = np.array([f"s{i}-r{j}" for j in range(n)], dtype=object)
        steps.append({"mode": mode, "rows": rows})
    return {"baseline": baseline, "steps": steps}


def _jsonable(rows: dict) -> dict:
    out = {}
    for key, value in rows.items():
        if value.dtype == object:
            out[key] = [None if v is None else str(v) for v in value]
        elif value.dtype.kind == "f":
            out[key] = [None if math.isnan(v) else v for v in value.astype(np.float64).ravel().tolist()]  # exact float32 values
        else:
            out[key] = value.ravel().tolist()
    return out


def write_scenario(sc: dict, path: Path) -> None:
    doc = {
        "numeric": NUMERIC, "categories": CATEGORIES, "embedDim": EMBED_DIM, "paneSeconds": PANE_SECONDS,
        "evaluationSeconds": EVALUATION_SECONDS,
        "rules": [base64.b64encode(r.SerializeToString()).decode() for r in rules()],
        "statistics": base64.b64encode(statistics().SerializeToString()).decode(),
        "baseline": _jsonable(sc["baseline"]),
        "steps": [{"mode": s["mode"], "rows": _jsonable(s["rows"])} for s in sc["steps"]],
    }
    path.write_text(json.dumps(doc))


# -- the Python side ---------------------------------------------------------------------------

class CountingSubscription(Subscription):
    heartbeats = 0

    def accept(self, response):
        if response.HasField("heartbeat"):
            self.heartbeats += 1
        return super().accept(response)


def _log_step(handle, step: dict) -> None:
    r = step["rows"]
    n = len(r["scores"])
    if step["mode"] == "rows":
        for i in range(n):
            feats = {name: float(r["numeric"][i, j]) for j, name in enumerate(NUMERIC)}
            feats["country"] = r["country"][i]
            assert handle.log(feats, embeddings={"emb": r["emb"][i].tolist()}, scores=[float(r["scores"][i])],
                              latency_ms=float(r["latency"][i]), status_codes=int(r["status"][i]), request_ids=str(r["request_ids"][i]))
    else:
        cols = {name: r["numeric"][:, j] for j, name in enumerate(NUMERIC)}
        cols["country"] = r["country"]
        assert handle.log(cols, embeddings={"emb": r["emb"]}, scores=r["scores"][:, None], latency_ms=r["latency"],
                          status_codes=r["status"], request_ids=list(r["request_ids"]))


def run_python(target: str, monitor_id: str, sc: dict) -> dict:
    client = Client(target, linger_s=0.02)
    try:
        client.create_monitor(monitor_id, numeric=NUMERIC, categorical={"country": CATEGORIES}, embeddings={"emb": EMBED_DIM},
                              scores=["p"], pane_seconds=PANE_SECONDS, pane_count=2, rules=rules())
        # knobs the Python client's create_monitor has no parameter for: set once, right after creation
        stub = monitor_pb2_grpc.MonitorServiceStub(client.channel)
        mon = stub.GetMonitor(monitor_pb2.GetMonitorRequest(name=f"monitors/{monitor_id}")).monitor
        mon.window.evaluation_interval.FromMilliseconds(int(EVALUATION_SECONDS * 1000))
        mon.statistics.CopyFrom(statistics())
        stub.UpdateMonitor(monitor_pb2.UpdateMonitorRequest(monitor=mon, update_mask=field_mask_pb2.FieldMask(paths=["window", "statistics"])))
        b = sc["baseline"]
        cols = {name: b["numeric"][:, j] for j, name in enumerate(NUMERIC)}
        cols["country"] = b["country"]
        client.create_baseline(monitor_id, cols, embeddings={"emb": b["emb"]}, scores=b["scores"][:, None], seed=0)
        handle = client.monitor(monitor_id)
        sub = CountingSubscription(last_sequence=0)
        events: list[alarm_pb2.AlarmEvent] = []
        stop = threading.Event()

        def read_events():
            try:
                for e in subscribe_alarms(client.channel, monitor=monitor_id, heartbeat_s=0.1, state=sub):
                    events.append(e)
                    if stop.is_set():
                        return
            except Exception:  # noqa: BLE001 - the channel closes under it at the end of the run
                return

        reader = threading.Thread(target=read_events, daemon=True)
        reader.start()
        watch = handle.watch_snapshots()
        snaps = [next(watch)]
        if snaps[0].row_count != 0:
            raise LockstepBroken(f"python: first evaluation saw {snaps[0].row_count} rows, expected 0")
        total = 0
        for k, step in enumerate(sc["steps"]):
            _log_step(handle, step)
            if not handle.flush(30):
                raise RuntimeError(f"python: flush timed out ({handle.stats})")
            total += len(step["rows"]["scores"])
            snap = next(watch)
            if snap.row_count != total:
                raise LockstepBroken(f"python: evaluation {k + 1} saw {snap.row_count} rows, expected {total}")
            snaps.append(snap)
        # the next evaluation is published only after the alarm events of the previous one are in the log
        next(watch)
        watch.close()
        h0 = sub.heartbeats
        deadline = time.monotonic() + 30
        while sub.heartbeats < h0 + 3:  # idle heartbeats after that: every matching event was delivered
            if time.monotonic() > deadline:
                raise RuntimeError("python: no heartbeats from the alarm subscription")
            time.sleep(0.05)
        stop.set()
        stats = handle.stats
        if stats.rows_acked != total or stats.rows_dropped or stats.rows_rejected:
            raise RuntimeError(f"python: sender stats {stats}")
        monitor = stub.GetMonitor(monitor_pb2.GetMonitorRequest(name=f"monitors/{monitor_id}")).monitor
        return {"snapshots": snaps, "events": list(events), "monitor": monitor}
    finally:
        client.close(5)


# -- the Node side -----------------------------------------------------------------------------

def run_node(node: str, target: str, monitor_id: str, scenario_path: Path, out_path: Path) -> dict:
    proc = subprocess.run([node, str(HERE / "scenario.js"), target, monitor_id, str(scenario_path), str(out_path)],
                          capture_output=True, text=True, timeout=300)
    if proc.returncode == 3:
        raise LockstepBroken(proc.stderr.strip())
    if proc.returncode != 0:
        raise RuntimeError(f"node scenario failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    doc = json.loads(out_path.read_text())
    return {
        "snapshots": [snapshot_pb2.Snapshot.FromString(base64.b64decode(s)) for s in doc["snapshots"]],
        "events": [alarm_pb2.AlarmEvent.FromString(base64.b64decode(s)) for s in doc["events"]],
        "monitor": monitor_pb2.Monitor.FromString(base64.b64decode(doc["monitor"])),
    }


# -- comparison --------------------------------------------------------------------------------

def _close(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return a == b or abs(a - b) <= TOL * max(1.0, abs(a), abs(b))


def diff_messages(a: Message, b: Message, path: str, ignore: set[str], out: list[str]) -> None:
    fields = {f.name: f for f, _ in a.ListFields()} | {f.name: f for f, _ in b.ListFields()}
    for name in sorted(fields):
        if name in ignore:
            continue
        fd = fields[name]
        va, vb = getattr(a, name), getattr(b, name)
        p = f"{path}.{name}"
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if dict(va) != dict(vb):
                out.append(f"{p}: {dict(va)} != {dict(vb)}")
        elif fd.is_repeated:
            if len(va) != len(vb):
                out.append(f"{p}: {len(va)} items != {len(vb)} items")
                continue
            for i, (x, y) in enumerate(zip(va, vb)):
                _diff_value(fd, x, y, f"{p}[{i}]", ignore, out)
        else:
            if fd.message_type is not None and (a.HasField(name) != b.HasField(name)):
                out.append(f"{p}: present in only one")
                continue
            _diff_value(fd, va, vb, p, ignore, out)


def _diff_value(fd, x, y, p: str, ignore: set[str], out: list[str]) -> None:
    if fd.message_type is not None:
        diff_messages(x, y, p, ignore, out)
    elif isinstance(x, float):
        if not _close(x, y):
            out.append(f"{p}: {x!r} != {y!r}")
    elif x != y:
        out.append(f"{p}: {x!r} != {y!r}")


def event_key(e: alarm_pb2.AlarmEvent, evaluations: dict[str, int], monitor: str) -> tuple:
    return (evaluations.get(e.snapshot, -1), e.rule_id, tuple(sorted(e.labels.items())), alarm_pb2.AlarmEventKind.Name(e.kind),
            monitor_pb2.Severity.Name(e.severity), alarm_pb2.AlarmState.Name(e.previous_state), alarm_pb2.AlarmState.Name(e.state),
            e.summary.replace(monitor, "{monitor}"), e.runbook.replace(monitor, "{monitor}"))


def check_dropped(side: dict, evaluations: dict[str, int], kept: list, mid: str) -> list[str]:
    """Events left out of the comparison may only come from evaluations after the last step (idle
    evaluations that ran on after the scenario); anything else left out is a failure. Prints why each was left out."""
    problems: list[str] = []
    last_kept = max((e.sequence for e in kept), default=0)
    last_eval = max((s.evaluate_time.ToNanoseconds() for s in side["snapshots"] if s.HasField("evaluate_time")), default=0)
    for e in side["events"]:
        if e.snapshot in evaluations:
            continue
        what = f"{mid}: event {e.sequence} ({e.rule_id}, {alarm_pb2.AlarmState.Name(e.state)}, snapshot {e.snapshot or '-'})"
        if not e.snapshot:
            problems.append(f"{what} left out: it comes from no evaluation")
        elif e.sequence <= last_kept:
            problems.append(f"{what} left out: its evaluation is not one of the scenario's, yet it precedes event {last_kept} of the scenario")
        elif e.HasField("event_time") and last_eval and e.event_time.ToNanoseconds() <= last_eval:
            problems.append(f"{what} left out: its evaluation is not one of the scenario's, yet it is not after the last step's evaluation")
        else:
            print(f"conformance: {what} left out: from an evaluation after the last step", flush=True)
    return problems


def compare(py: dict, nd: dict, py_id: str, nd_id: str) -> list[str]:
    problems: list[str] = []
    spec_ignore = {"name", "create_time", "update_time", "etag", "active_baseline"}
    diff_messages(py["monitor"], nd["monitor"], "monitor", spec_ignore, problems)
    if len(py["snapshots"]) != len(nd["snapshots"]):
        problems.append(f"evaluations: python {len(py['snapshots'])} != node {len(nd['snapshots'])}")
    for k, (a, b) in enumerate(zip(py["snapshots"], nd["snapshots"])):
        diff_messages(a, b, f"evaluation[{k}]", IGNORED, problems)
    streams = []
    for side, mid in ((py, py_id), (nd, nd_id)):
        evaluations = {s.name: k for k, s in enumerate(side["snapshots"])}
        events = [e for e in side["events"] if e.snapshot in evaluations]  # later, idle evaluations are not part of the scenario
        problems.extend(check_dropped(side, evaluations, events, mid))
        if not any(e.state == alarm_pb2.ALARM_STATE_FIRING for e in events):
            problems.append(f"{mid}: no alarm event with state FIRING: the scenario did not exercise an alarm "
                            f"(states: {[alarm_pb2.AlarmState.Name(e.state) for e in events]})")
        seqs = [e.sequence for e in events]
        if seqs != sorted(set(seqs)):
            problems.append(f"{mid}: event sequences not strictly increasing: {seqs}")
        streams.append([(event_key(e, evaluations, mid), e) for e in events])
    (pa, na) = streams
    if len(pa) != len(na):
        problems.append(f"alarm events: python {len(pa)} != node {len(na)}")
    for i, ((ka, ea), (kb, eb)) in enumerate(zip(pa, na)):
        if ka != kb:
            problems.append(f"alarm event {i}: python {ka} != node {kb}")
        for f in ("value", "threshold"):
            if not _close(getattr(ea, f), getattr(eb, f)):
                problems.append(f"alarm event {i}.{f}: {getattr(ea, f)!r} != {getattr(eb, f)!r}")
    return problems


# -- server ------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(data_dir: Path, log_path: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    log = open(log_path, "ab")
    proc = subprocess.Popen([sys.executable, "-m", "driftd.server.cli", "serve", "--data-dir", str(data_dir), "--host", "127.0.0.1",
                             "--port", str(port), "--metrics-port", "-1", "--grace-period", "1", "--log-level", "warning"],
                            stdout=log, stderr=log, stdin=subprocess.DEVNULL)
    target = f"127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    with grpc.insecure_channel(target) as channel:
        stub = monitor_pb2_grpc.MonitorServiceStub(channel)
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"driftd exited during startup; see {log_path}")
            try:
                stub.ListMonitors(monitor_pb2.ListMonitorsRequest(page_size=1), timeout=1)
                return proc, target
            except grpc.RpcError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"driftd did not answer within 60 s; see {log_path}")
                time.sleep(0.1)


def wait_clear_of_pane_boundary() -> None:
    """All rows of a run must land in one pane (row keys of the samples depend on the pane): a run
    started within 3 minutes of a pane boundary (UTC midnight) waits until it has passed."""
    now = datetime.now(timezone.utc).timestamp()
    left = PANE_SECONDS - now % PANE_SECONDS
    if left < 180:
        print(f"conformance: waiting {left:.0f} s for the UTC day (pane) boundary to pass", flush=True)
        time.sleep(left + 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--node", default=os.environ.get("NODE", "node"))
    parser.add_argument("--keep", type=Path, help="keep the scenario, outputs and server log in this directory")
    parser.add_argument("--attempts", type=int, default=3, help="runs to try when the lock-step with evaluations breaks")
    ns = parser.parse_args(argv)
    if not (ROOT / "clients" / "node" / "dist" / "src" / "index.js").exists():
        print("conformance: build the Node client first (cd clients/node && npm ci && npm run build)", file=sys.stderr)
        return 2
    signal.signal(signal.SIGALRM, lambda *_: (_ for _ in ()).throw(TimeoutError("conformance run took over 15 minutes")))
    signal.alarm(900)
    work = Path(tempfile.mkdtemp(prefix="driftd-conformance-")) if ns.keep is None else ns.keep
    work.mkdir(parents=True, exist_ok=True)
    scenario = make_scenario()
    scenario_path = work / "scenario.json"
    write_scenario(scenario, scenario_path)
    proc, target = start_server(work / "data", work / "server.log")
    try:
        for attempt in range(1, ns.attempts + 1):
            wait_clear_of_pane_boundary()
            py_id, nd_id = f"conf-py-{attempt}", f"conf-node-{attempt}"
            try:
                t0 = time.monotonic()
                py = run_python(target, py_id, scenario)
                t1 = time.monotonic()
                nd = run_node(ns.node, target, nd_id, scenario_path, work / f"node-{attempt}.json")
                t2 = time.monotonic()
            except LockstepBroken as exc:
                print(f"conformance: attempt {attempt}: lock-step with evaluations broke ({exc}); retrying", flush=True)
                continue
            problems = compare(py, nd, py_id, nd_id)
            n_events = len([e for e in py["events"] if e.snapshot in {s.name for s in py["snapshots"]}])
            rows = sum(len(s["rows"]["scores"]) for s in scenario["steps"])
            if problems:
                print(f"conformance: FAILED: the Python and Node clients disagree ({len(problems)} differences):")
                for p in problems[:200]:
                    print("  " + p)
                return 1
            states = [alarm_pb2.AlarmState.Name(e.state).removeprefix("ALARM_STATE_").lower()
                      for e in py["events"] if e.snapshot in {s.name for s in py["snapshots"]}]
            print(f"conformance: OK: {len(py['snapshots'])} evaluations x {rows} rows identical (statistics to {TOL:g}), "
                  f"{n_events} alarm events identical ({', '.join(states)}); python {t1 - t0:.1f} s, node {t2 - t1:.1f} s")
            return 0
        print(f"conformance: FAILED: the lock-step with evaluations broke in all {ns.attempts} attempts (machine too loaded?)")
        return 1
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if ns.keep is None:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())

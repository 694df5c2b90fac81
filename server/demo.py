"""`driftd demo`: a self-contained run of the seed scenario.

Starts a driftd server in-process on a temporary embedded store, creates a monitor with numeric,
categorical, embedding and score columns and a baseline, streams a normal phase, then injects one
drift per phase — mean shift, variance change, categorical share change, embedding shift, latency
spike, label-accuracy drop (labels arrive after a delay) — and shows the snapshots' key numbers and
every alarm live, with its runbook text. Ends with a summary: alarms fired, time to detect each
injected drift, false alarms in the normal phase. Exit code 0 when every drift was detected and
the normal phase raised nothing.
"""

from __future__ import annotations

import asyncio
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import grpc
import numpy as np
from rich.console import Console
from rich.table import Table

from driftd.server.transport.codec import encode_tensor
from driftd.v1 import (
    alarm_pb2,
    alarm_pb2_grpc,
    baseline_pb2,
    baseline_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    monitor_pb2 as m,
    monitor_pb2_grpc,
    snapshot_pb2,
    snapshot_pb2_grpc,
)

NUMERIC = ("amount", "age", "tenure", "income")
COUNTRIES = ("de", "fr", "us", "uk")
COUNTRY_SHARES = np.array([0.4, 0.3, 0.2, 0.1])
EMBED_DIM = 16


@dataclass(frozen=True)
class Phase:
    name: str
    drift: str | None  # None = normal traffic
    detected_by: tuple[str, str | None] | None = None  # (rule_id, feature label) whose firing counts as detection


PHASES = (
    Phase("normal", None),
    Phase("mean shift (age +1.5 sd)", "mean", ("input-drift", "age")),
    Phase("variance change (income sd x3)", "variance", ("input-drift", "income")),
    Phase("categorical share change (country)", "categorical", ("input-drift", "country")),
    Phase("embedding shift (text)", "embedding", ("embedding-drift", None)),
    Phase("latency spike (x8)", "latency", ("latency-p99", None)),
    Phase("label-accuracy drop (delayed labels)", "accuracy", ("accuracy-drop", None)),
)


@dataclass
class Scenario:
    phase_seconds: float = 12.0
    pane_seconds: float = 2.0
    pane_count: int = 3
    evaluation_seconds: float = 1.0
    rows_per_second: int = 2000
    batch_rows: int = 250
    label_delay_seconds: float = 1.0
    seed: int = 7


@dataclass
class Outcome:
    phase_starts: dict[str, float] = field(default_factory=dict)
    events: list[tuple[float, alarm_pb2.AlarmEvent]] = field(default_factory=list)
    snapshots: int = 0
    drift_series: int = 0  # driftd_feature_* samples on /metrics at the end

    def phase_at(self, t: float) -> str:
        current = PHASES[0].name
        for phase in PHASES:
            start = self.phase_starts.get(phase.name)
            if start is not None and t >= start:
                current = phase.name
        return current


def monitor_spec(sc: Scenario) -> m.Monitor:
    mon = m.Monitor(model_id="fraud-demo", model_version="1", lane="prod", description="driftd demo monitor")
    for name in NUMERIC:
        mon.schema.numeric_features.add(name=name, valid_min=-1e6, valid_max=1e6)
    mon.schema.categorical_features.add(name="country", categories=list(COUNTRIES))
    mon.schema.embedding_blocks.add(name="text", dim=EMBED_DIM)
    mon.schema.score_outputs.add(name="p_fraud", kind=m.SCORE_KIND_PROBABILITY)
    mon.window.pane_duration.FromMilliseconds(int(sc.pane_seconds * 1000))
    mon.window.pane_count = sc.pane_count
    mon.window.evaluation_interval.FromMilliseconds(int(sc.evaluation_seconds * 1000))
    # The embedding rule gates on the permutation p-value; at p <= 0.01 about 1 % of normal-traffic
    # evaluations pass it (measured 0.5 % over 200 seeded windows), and a dozen overlapping windows in
    # the normal phase then raised a false alarm in a few % of runs. 500 permutations and p <= 0.002:
    # ~0.2 % per evaluation; the injected shift still gives the smallest p-value there is.
    mon.statistics.mmd_permutations = 500
    mon.statistics.embedding_sample_size = 128
    min_rows = int(sc.rows_per_second * sc.pane_seconds)

    def rule(rule_id, selector, direction, threshold, severity, summary, runbook, *, level=None, max_p=None, min_samples=min_rows):
        r = mon.rules.add(rule_id=rule_id, severity=severity, for_evaluations=1, min_samples=min_samples, summary=summary, runbook=runbook)
        r.metric.selector = selector
        r.metric.direction = direction
        if level is None:
            r.metric.fixed_threshold = threshold
        else:
            r.metric.calibrated_threshold = level
        if max_p is not None:
            r.metric.max_p_value = max_p

    rule("input-drift", "feature_psi", m.DIRECTION_ABOVE, 0.25, m.SEVERITY_P2,
         "{feature}: PSI {value} > {threshold} (retrain band) against {baseline}",
         "Check the upstream pipeline that produces {feature} (unit, encoding, default values); compare with the canary lane; "
         "if the shift is real, retrain on recent data or roll back to the previous model version.")
    rule("embedding-drift", 'embedding_mmd2{block="text"}', m.DIRECTION_ABOVE, 0, m.SEVERITY_P2,
         "text embeddings: MMD² {value} above calibrated critical {threshold} (permutation p <= 0.002)",
         "The text encoder's inputs or the encoder itself changed: check the tokenizer / encoder version deployed with the model.",
         level=m.CALIBRATED_LEVEL_CRITICAL, max_p=0.002)
    rule("latency-p99", "latency_p99_ms", m.DIRECTION_ABOVE, 150.0, m.SEVERITY_P2,
         "p99 latency {value} ms > {threshold} ms",
         "Check the serving fleet: saturation, a slow dependency, or a heavier model version rolled out.")
    rule("accuracy-drop", "accuracy", m.DIRECTION_BELOW, 0.8, m.SEVERITY_P1,
         "accuracy on labelled traffic {value} < {threshold}",
         "The model is measurably worse on ground truth: roll back to the previous model version, then investigate.",
         min_samples=200)
    return mon


class Traffic:
    """Seeded generator of one phase's rows (the model is right ~90 % of the time normally)."""

    def __init__(self, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.embed_shift = np.zeros(EMBED_DIM, np.float32)
        self.embed_shift[: EMBED_DIM // 2] = 0.6

    def rows(self, n: int, drift: str | None) -> dict[str, np.ndarray]:
        rng = self.rng
        numeric = np.column_stack([
            rng.lognormal(3.0, 0.8, n), rng.normal(40, 12, n), rng.normal(5, 2, n), rng.normal(50_000, 15_000, n),
        ]).astype(np.float32)
        if drift == "mean":
            numeric[:, 1] += 1.5 * 12
        if drift == "variance":
            numeric[:, 3] = 50_000 + (numeric[:, 3] - 50_000) * 3
        shares = COUNTRY_SHARES[::-1] if drift == "categorical" else COUNTRY_SHARES
        country = rng.choice(len(COUNTRIES), size=(n, 1), p=shares).astype(np.int64)
        text = rng.normal(size=(n, EMBED_DIM)).astype(np.float32)
        if drift == "embedding":
            text += self.embed_shift
        scores = rng.beta(2, 5, size=(n, 1)).astype(np.float32)
        latency = rng.lognormal(3.0, 0.35, n).astype(np.float32)
        if drift == "latency":
            latency *= 8
        predicted = scores[:, 0] >= 0.5
        wrong = rng.random(n) < (0.45 if drift == "accuracy" else 0.05)
        labels = np.where(wrong, ~predicted, predicted).astype(np.float32)
        return {"numeric": numeric, "categorical": country, "text": text, "scores": scores, "latency": latency,
                "status": np.full(n, 200, np.int32), "labels": labels}


def to_batch(rows: dict[str, np.ndarray], monitor: str, sequence: int, request_ids: list[str] | None) -> ingest_pb2.Batch:
    b = ingest_pb2.Batch(monitor=monitor, producer_id="demo", sequence=sequence)
    b.numeric.CopyFrom(encode_tensor(rows["numeric"]))
    b.categorical.CopyFrom(encode_tensor(rows["categorical"]))
    b.embeddings["text"].CopyFrom(encode_tensor(rows["text"]))
    b.scores.CopyFrom(encode_tensor(rows["scores"]))
    b.latency_ms.CopyFrom(encode_tensor(rows["latency"]))
    b.status_codes.CopyFrom(encode_tensor(rows["status"]))
    if request_ids:
        b.request_ids.extend(request_ids)
    return b


def _report_metrics(metrics_port: int, console: Console) -> int:
    """What a Prometheus scrape of the demo server sees at the end (one line)."""
    import urllib.request

    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10).read().decode()
    feature = [line for line in text.splitlines() if line.startswith("driftd_feature_")]
    series = {line.split("{")[0] for line in text.splitlines() if line.startswith("driftd_") and not line.startswith("#")}
    console.print(f"/metrics: {len(series)} driftd series families, {len(feature)} per-feature drift samples "
                  "(`driftd export prometheus-rules` / `grafana-dashboard` turn them into alerts and a dashboard)")
    return len(feature)


async def run_demo(sc: Scenario, console: Console, data_dir: Path | None = None) -> tuple[bool, Outcome]:
    from driftd.server.app import build_server
    from driftd.server.config import Settings

    tmp = tempfile.TemporaryDirectory(prefix="driftd-demo-") if data_dir is None else None
    settings = Settings(data_dir=Path(tmp.name) if tmp else data_dir, grpc_port=0, metrics_port=0, grace_period_s=1.0)
    server, port = await build_server(settings)
    await server.start()
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{port}")
    outcome = Outcome()
    try:
        console.print(f"[bold]driftd demo[/bold] — server on 127.0.0.1:{port}, store in {settings.data_dir}, "
                      f"Prometheus metrics on http://127.0.0.1:{server.metrics_port}/metrics")
        monitor_name = "monitors/fraud-demo"
        await monitor_pb2_grpc.MonitorServiceStub(channel).CreateMonitor(m.CreateMonitorRequest(monitor_id="fraud-demo", monitor=monitor_spec(sc)))
        traffic = Traffic(sc.seed)
        reference = traffic.rows(6000, None)

        async def reference_stream():
            yield baseline_pb2.CreateBaselineRequest(header=baseline_pb2.BaselineHeader(
                parent=monitor_name, baseline_id="b1", model_id="fraud-demo", source="demo reference", activate=True))
            for start in range(0, 6000, 1000):
                yield baseline_pb2.CreateBaselineRequest(batch=to_batch({k: v[start:start + 1000] for k, v in reference.items()}, monitor_name, 0, None))

        with console.status("building the baseline (quantile bins, reservoirs, calibrated thresholds)..."):
            baseline = (await baseline_pb2_grpc.BaselineServiceStub(channel).CreateBaseline(reference_stream())).baseline
        console.print(f"baseline [cyan]{baseline.name}[/cyan]: {baseline.row_count} rows, data hash {baseline.data_hash[:12]}…")

        alarms_task = asyncio.create_task(_follow_alarms(channel, console, outcome))
        snapshots_task = asyncio.create_task(_follow_snapshots(channel, monitor_name, console, outcome))
        await _stream_phases(channel, monitor_name, traffic, sc, console, outcome)
        await asyncio.sleep(sc.pane_seconds * sc.pane_count + 2 * sc.evaluation_seconds)  # let the last window clear
        alarms_task.cancel()
        snapshots_task.cancel()
        await asyncio.gather(alarms_task, snapshots_task, return_exceptions=True)
        ok = _summarise(sc, console, outcome)
        outcome.drift_series = await asyncio.to_thread(_report_metrics, server.metrics_port, console)
        return ok, outcome
    finally:
        await channel.close()
        await server.drain_and_stop(1.0)
        if tmp is not None:
            tmp.cleanup()


async def _stream_phases(channel, monitor_name, traffic, sc: Scenario, console: Console, outcome: Outcome) -> None:
    ingest = ingest_pb2_grpc.IngestServiceStub(channel)
    interval = sc.batch_rows / sc.rows_per_second
    pending_labels: list[tuple[float, list[str], np.ndarray]] = []
    sequence = 0

    async def requests():
        nonlocal sequence
        loop = asyncio.get_running_loop()
        for phase in PHASES:
            outcome.phase_starts[phase.name] = loop.time()
            console.rule(f"[bold]{phase.name}")
            end = loop.time() + sc.phase_seconds
            next_send = loop.time()
            while loop.time() < end:
                rows = traffic.rows(sc.batch_rows, phase.drift)
                sequence += 1
                ids = [f"{sequence}-{k}" for k in range(sc.batch_rows)]
                pending_labels.append((loop.time() + sc.label_delay_seconds, ids, rows["labels"]))
                yield ingest_pb2.StreamBatchesRequest(batch=to_batch(rows, monitor_name, sequence, ids))
                while pending_labels and pending_labels[0][0] <= loop.time():
                    _, label_ids, labels = pending_labels.pop(0)
                    await ingest.WriteLabels(ingest_pb2.WriteLabelsRequest(monitor=monitor_name, request_ids=label_ids,
                                                                         labels=encode_tensor(labels)))
                next_send += interval
                await asyncio.sleep(max(0.0, next_send - loop.time()))

    async for response in ingest.StreamBatches(requests()):
        if response.ack.status.code != 0:
            console.print(f"[red]batch {response.ack.sequence} refused: {response.ack.status.message}")


async def _follow_alarms(channel, console: Console, outcome: Outcome) -> None:
    stub = alarm_pb2_grpc.AlarmServiceStub(channel)
    loop = asyncio.get_running_loop()
    async for response in stub.SubscribeAlarms(alarm_pb2.SubscribeAlarmsRequest(start_after_sequence=0)):
        if not response.HasField("event"):
            continue
        e = response.event
        outcome.events.append((loop.time(), e))
        state = alarm_pb2.AlarmState.Name(e.state).removeprefix("ALARM_STATE_").lower()
        color = {"firing": "red", "resolved": "green", "pending": "yellow"}.get(state, "white")
        sev = m.Severity.Name(e.severity).removeprefix("SEVERITY_")
        console.print(f"[{color}]#{e.sequence} {sev} {e.rule_id} {dict(e.labels) or ''} → {state}[/{color}]: {e.summary}")
        if state == "firing":
            console.print(f"    [dim]runbook: {e.runbook}[/dim]")


async def _follow_snapshots(channel, monitor_name: str, console: Console, outcome: Outcome) -> None:
    stub = snapshot_pb2_grpc.SnapshotServiceStub(channel)
    while True:
        try:
            async for response in stub.WatchSnapshots(snapshot_pb2.WatchSnapshotsRequest(parent=monitor_name)):
                s = response.snapshot
                outcome.snapshots += 1
                top = max(s.numeric_features, key=lambda f: f.psi.value if f.psi.value == f.psi.value else -1, default=None)
                cat = s.categorical_features[0] if s.categorical_features else None
                emb = s.embedding_blocks[0] if s.embedding_blocks else None
                verdict = snapshot_pb2.Verdict.Name(s.verdict).removeprefix("VERDICT_").lower()
                parts = [f"rows {s.row_count:>6}", f"verdict {verdict:<17}"]
                if top is not None:
                    parts.append(f"max PSI {top.feature}={top.psi.value:.3f}")
                if cat is not None:
                    parts.append(f"country PSI={cat.psi.value:.3f}")
                if emb is not None:
                    parts.append(f"MMD² p={emb.mmd2_unbiased.p_value:.3f}")
                parts.append(f"p99 {s.latency.p99_ms:.0f} ms")
                if s.label_quality.labelled_count:
                    parts.append(f"acc {s.label_quality.accuracy:.2f} (n={s.label_quality.labelled_count})")
                console.print("[dim]snapshot[/dim] " + " · ".join(parts))
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.2)  # the runtime was rebuilt; watch again


def _summarise(sc: Scenario, console: Console, outcome: Outcome) -> bool:
    firing = [(t, e) for t, e in outcome.events if e.state == alarm_pb2.ALARM_STATE_FIRING]
    normal_end = outcome.phase_starts[PHASES[1].name]
    false_alarms = [e for t, e in firing if t < normal_end]
    table = Table(title="driftd demo summary")
    for col in ("injected drift", "detected by", "time to detect"):
        table.add_column(col)
    all_detected = True
    for phase in PHASES[1:]:
        rule_id, feature = phase.detected_by
        start = outcome.phase_starts[phase.name]
        hits = [t for t, e in firing if t >= start and e.rule_id == rule_id and (feature is None or e.labels.get("feature") == feature)]
        if hits:
            table.add_row(phase.name, rule_id + (f"{{feature={feature}}}" if feature else ""), f"{hits[0] - start:.1f} s")
        else:
            all_detected = False
            table.add_row(phase.name, rule_id, "[red]not detected[/red]")
    console.print(table)
    console.print(f"alarms fired: {len(firing)} · events in the log: {len(outcome.events)} · snapshots: {outcome.snapshots} · "
                  f"false alarms in the normal phase: {len(false_alarms)}")
    for e in false_alarms:  # name them: a user has to know what fired on normal traffic
        labels = ", ".join(f"{k}={v}" for k, v in sorted(e.labels.items()))
        console.print(f"[red]false alarm[/red] {e.rule_id}{{{labels}}}: {e.summary}")
    ok = all_detected and not false_alarms
    console.print("[bold green]every injected drift detected, no false alarm[/bold green]" if ok
                  else "[bold red]demo expectations not met[/bold red]")
    return ok

"""/metrics on a live driftd with real traffic: promtool lints the scrape; every drift family the
dashboard and the generated rules name is there; a real Prometheus scrapes driftd, loads the
exported rules, answers queries for the drift gauges and shows the drift alert for the drifted
feature only; deleting a monitor removes its series."""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import urllib.parse
import urllib.request

import numpy as np
import pandas as pd
import pytest
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from driftd.client import Client
from driftd.server.cli import app
from driftd.server.observability.grafana import dashboard, panel_queries
from driftd.v1 import monitor_pb2, monitor_pb2_grpc
from support import free_port, start_served, stop_served

from .tools import promtool, stop_process, tool, wait_http


def start_prometheus(binary: str, config, tmp_path, attempts: int = 3):
    """Start Prometheus on a free loopback port (retrying if the port was taken meanwhile); its
    output goes to a file, never to an unread pipe."""
    for attempt in range(attempts):
        port = free_port()
        log_path = tmp_path / f"prometheus-{attempt}.log"
        with open(log_path, "w") as log_file:
            proc = subprocess.Popen([binary, f"--config.file={config}", f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                                     f"--web.listen-address=127.0.0.1:{port}"], stdout=log_file, stderr=subprocess.STDOUT)
        try:
            wait_http(f"http://127.0.0.1:{port}/-/ready", 30)
            return proc, f"http://127.0.0.1:{port}"
        except OSError:
            stop_process(proc)
    raise AssertionError(f"prometheus did not start:\n{log_path.read_text()[-3000:]}")

FEATURES = ["f0", "f1", "f2"]


def frame(n: int, seed: int, shift: float = 0.0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f: rng.normal(size=n) for f in FEATURES})
    df["f1"] += shift
    df["plan"] = rng.choice(["free", "pro", "team"], size=n, p=[0.6, 0.3, 0.1])
    df["p_churn"] = rng.beta(2, 5, size=n)
    emb = rng.normal(size=(n, 8)).astype(np.float32) + shift
    return df, emb


def drive(port: int, monitor_id: str = "churn") -> None:
    """A monitor with every column kind, a baseline, drifted traffic with latencies, status codes,
    request ids, and labels joined to them."""
    ref, ref_emb = frame(3000, seed=0)
    live, live_emb = frame(2000, seed=1, shift=1.0)
    with Client(f"127.0.0.1:{port}") as client:
        client.create_monitor_from_frame(monitor_id, ref, scores=["p_churn"], embeddings={"text": ref_emb}, pane_seconds=3600)
        client.create_baseline(monitor_id, ref, embeddings={"text": ref_emb})
        monitor = client.monitor(monitor_id)
        ids = [f"r{i}" for i in range(len(live))]
        monitor.log(live[FEATURES + ["plan"]], embeddings={"text": live_emb}, scores=live[["p_churn"]].to_numpy(),
                    latency_ms=np.full(len(live), 40.0), status_codes=np.where(np.arange(len(live)) % 10 == 0, 500, 200),
                    request_ids=ids)
        assert monitor.flush(60)
        labels = (np.random.default_rng(2).random(len(live)) < live["p_churn"].to_numpy()).astype(np.float32)
        monitor.log_labels(ids, labels)


def scrape(port: int) -> str:
    return urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10).read().decode()


def families(text: str) -> set[str]:
    return {line.split()[2] for line in text.splitlines() if line.startswith("# TYPE ")}


def samples(text: str) -> dict[str, list[tuple[dict, float]]]:
    out: dict[str, list[tuple[dict, float]]] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out.setdefault(sample.name, []).append((sample.labels, sample.value))
    return out


def one(values, name: str, **labels) -> float:
    found = [v for got, v in values[name] if got.get("monitor") == "churn" and labels.items() <= got.items()]
    assert len(found) == 1, (name, labels, values[name])
    return found[0]


def sample_names(text: str) -> set[str]:
    return {re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0) for line in text.splitlines() if line and not line.startswith("#")}


@pytest.fixture
async def live(tmp_path):
    served = await start_served(tmp_path / "data", metrics_port=0)
    try:
        await asyncio.to_thread(drive, served.port)
        await (await served.server.runtimes.get("churn")).evaluate()
        yield served
    finally:
        await stop_served(served)


async def test_scrape_passes_promtool_and_has_every_drift_family(live):
    text = await asyncio.to_thread(scrape, live.server.metrics_port)
    lint = promtool("check", "metrics", input=text)
    assert lint.returncode == 0, lint.stdout + lint.stderr
    names = sample_names(text)
    for family in ("driftd_feature_psi", "driftd_feature_js", "driftd_feature_ks", "driftd_feature_w1", "driftd_drifted_features",
                   "driftd_embedding_mmd2", "driftd_embedding_pvalue", "driftd_embedding_centroid_cosine_distance",
                   "driftd_prediction_positive_rate", "driftd_prediction_baseline_positive_rate", "driftd_prediction_psi",
                   "driftd_feature_nan_rate", "driftd_feature_unseen_rate", "driftd_model_accuracy", "driftd_model_f1",
                   "driftd_model_auroc", "driftd_model_ece", "driftd_request_latency_p99_seconds", "driftd_request_error_rate",
                   "driftd_window_rows", "driftd_monitor_verdict", "driftd_ingest_rows_total", "driftd_ingest_batch_seconds_bucket",
                   "driftd_rpc_requests_total", "driftd_evaluation_duration_seconds_bucket", "driftd_alarm_events_total"):
        assert family in names, family
    values = samples(text)
    psi = {labels["feature"]: v for labels, v in values["driftd_feature_psi"]}
    assert psi["f1"] > 0.25 > psi["f0"], psi           # f1 shifted by one sd, f0 did not
    assert one(values, "driftd_drifted_features") >= 1
    assert one(values, "driftd_request_latency_p99_seconds") == pytest.approx(0.040, rel=0.02)  # 40 ms, in seconds
    assert one(values, "driftd_request_error_rate") == pytest.approx(0.1)
    assert one(values, "driftd_monitor_verdict", verdict="critical") == 1.0
    assert [v for _, v in values["driftd_alarms_firing"]] == [0.0, 0.0, 0.0]  # zero-filled P1..P3, nothing fires yet


async def test_every_dashboard_query_names_a_series_in_the_scrape(live):
    text = await asyncio.to_thread(scrape, live.server.metrics_port)
    names = sample_names(text)
    model = dashboard()
    assert model["templating"]["list"][1]["name"] == "monitor"
    referenced = set()
    for expr in panel_queries(model):
        referenced |= set(re.findall(r"\bdriftd_[a-z0-9_]+", expr))
    missing = sorted(referenced - names)
    assert not missing, f"dashboard queries series that /metrics does not export: {missing}"
    rows = [p["title"] for p in model["panels"] if p["type"] == "row"]
    assert rows == ["Service health", "Model quality", "Data drift", "Prediction distribution vs baseline", "Embedding drift",
                    "Alarm history"]
    ids = [p["id"] for p in model["panels"]]
    assert len(ids) == len(set(ids))
    assert all(p["gridPos"]["x"] + p["gridPos"]["w"] <= 24 for p in model["panels"])


async def test_deleted_monitor_series_disappear(live):
    assert 'monitor="churn"' in await asyncio.to_thread(scrape, live.server.metrics_port)
    await monitor_pb2_grpc.MonitorServiceStub(live.channel).DeleteMonitor(monitor_pb2.DeleteMonitorRequest(name="monitors/churn"))
    text = await asyncio.to_thread(scrape, live.server.metrics_port)
    leftover = [line for line in text.splitlines() if 'monitor="churn"' in line and not line.startswith(("driftd_ingest_", "driftd_rpc"))]
    assert leftover == []


def _query(base: str, promql: str) -> list:
    url = f"{base}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    body = json.loads(urllib.request.urlopen(url, timeout=10).read())
    assert body["status"] == "success", body
    return body["data"]["result"]


async def test_real_prometheus_scrapes_driftd_and_evaluates_the_exported_rules(live, tmp_path):
    prometheus = tool("prometheus")
    rules = tmp_path / "driftd.rules.yml"
    result = await asyncio.to_thread(CliRunner().invoke, app, ["export", "prometheus-rules", "--target", f"127.0.0.1:{live.port}",
                                                               "--monitor", "churn", "-o", str(rules)])
    assert result.exit_code == 0, result.output
    assert promtool("check", "rules", str(rules)).returncode == 0
    config = tmp_path / "prometheus.yml"
    config.write_text(
        "global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
        f"rule_files: [{rules}]\n"
        "scrape_configs:\n"
        f"  - job_name: driftd\n    static_configs: [{{targets: ['127.0.0.1:{live.server.metrics_port}']}}]\n")
    proc, base = await asyncio.to_thread(start_prometheus, prometheus, config, tmp_path)
    try:

        async def eventually(promql: str, timeout: float = 30.0) -> list:
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                found = await asyncio.to_thread(_query, base, promql)
                if found or asyncio.get_running_loop().time() > deadline:
                    return found
                await asyncio.sleep(0.5)

        psi = await eventually('driftd_feature_psi{monitor="churn"}')
        values = {r["metric"]["feature"]: float(r["value"][1]) for r in psi}
        assert set(values) == {"f0", "f1", "f2", "plan"} and values["f1"] > 0.25
        assert await eventually('driftd_embedding_mmd2{monitor="churn",block="text"}')
        # the monitor's default pack needs two evaluations (2 x 3600 s) before firing: Prometheus shows
        # the drift alert pending, for the shifted feature only
        alerts = await eventually('ALERTS{alertname="DriftdFeatureDriftRetrain"}')
        assert {(a["metric"]["feature"], a["metric"]["alertstate"]) for a in alerts} == {("f1", "pending")}
        assert all(a["metric"]["severity"] == "P2" and a["metric"]["monitor"] == "churn" for a in alerts)
    finally:
        stop_process(proc)


async def test_series_survive_a_restart_without_new_traffic(tmp_path):
    served = await start_served(tmp_path / "data", metrics_port=0)
    try:
        await asyncio.to_thread(drive, served.port)
        runtime = await served.server.runtimes.get("churn")
        for _ in range(3):  # pending at the first evaluation, firing once it held for two more
            await runtime.evaluate()
        before_all = samples(await asyncio.to_thread(scrape, served.server.metrics_port))
        before = before_all["driftd_feature_psi"]
        firing = {labels["severity"]: v for labels, v in before_all["driftd_alarms_firing"]}
        assert firing["P3"] >= 1, firing
    finally:
        await stop_served(served)
    again = await start_served(tmp_path / "data", metrics_port=0)
    try:
        for _ in range(100):  # the runtime loads in the background at start
            text = await asyncio.to_thread(scrape, again.server.metrics_port)
            if "driftd_feature_psi" in text:
                break
            await asyncio.sleep(0.05)
        assert sorted(samples(text)["driftd_feature_psi"], key=str) == sorted(before, key=str)
        for _ in range(100):  # alarm engines load right after the runtimes
            after = {labels["severity"]: v for labels, v in samples(await asyncio.to_thread(scrape, again.server.metrics_port))
                     .get("driftd_alarms_firing", [])}
            if after == firing:
                break
            await asyncio.sleep(0.05)
        assert after == firing
    finally:
        await stop_served(again)

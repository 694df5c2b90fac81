"""The drift collector alone: bounded cardinality (the most drifted columns kept, the rest counted),
label escaping, exposition text equal to what prometheus-client renders from the same rows, cache
refresh on a new snapshot, no series for monitors that are gone."""

from __future__ import annotations

from datetime import datetime, timezone

from prometheus_client import CollectorRegistry, generate_latest

from driftd.server.domain.alarms import default_rules
from driftd.server.domain.monitor import Monitor, MonitorSpec, NumericFeature, Schema
from driftd.server.observability.drift_metrics import DriftCollector

from .tools import exposition_samples

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def stat(value, crit=0.2):
    return {"value": value, "p_value": None, "warning_threshold": crit / 2, "critical_threshold": crit, "verdict": "ok",
            "sample_size": 1000, "baseline_sample_size": 5000, "effect_size": None}


def snapshot(psis: dict[str, float], snapshot_id: int = 1) -> dict:
    return {"snapshot_id": snapshot_id, "evaluate_time": 1.7e9 + snapshot_id, "row_count": 1000, "drifted_features": 1,
            "verdict": "warning",
            "numeric_features": [{"feature": f, "sample_count": 1000, "psi": stat(v), "js": stat(v / 10), "ks": stat(0.01),
                                  "w1": stat(0.02), "nan_rate": stat(0.0, 0.02), "out_of_range_rate": stat(0.0, 0.02),
                                  "outlier_rate": stat(0.0, 0.02), "kl": stat(0.0)} for f, v in psis.items()]}


def monitor(features, monitor_id="m1") -> Monitor:
    schema = Schema(numeric=tuple(NumericFeature(f) for f in features))
    return Monitor(monitor_id, MonitorSpec(schema=schema, rules=default_rules(schema)), NOW, NOW, "e")


def test_cap_keeps_the_most_drifted_columns_and_counts_the_rest():
    psis = {f"f{i}": 0.01 * i for i in range(10)}  # f9 drifts most
    mon = monitor(psis)
    collector = DriftCollector(lambda: [(mon, snapshot(psis))], lambda: {}, max_features=3)
    samples = exposition_samples(collector.exposition().decode())
    kept = {dict(labels)["feature"] for (name, labels) in samples if name == "driftd_feature_psi"}
    assert kept == {"f9", "f8", "f7"}
    assert samples[("driftd_feature_series_omitted", (("monitor", "m1"),))] == 7
    # the statistic families are the configured ones (+ thresholds of calibrated rules); kl is not exported by default
    names = {name for name, _ in samples}
    assert "driftd_feature_kl" not in names and "driftd_feature_js" in names
    assert "driftd_feature_psi_threshold" in names


def test_exposition_matches_prometheus_client_rendering_and_escapes_labels():
    odd = 'we"ird\\name\nx'
    mon = monitor([odd, "b"])
    collector = DriftCollector(lambda: [(mon, snapshot({odd: 0.3, "b": 0.01}))], lambda: {("m1", "P2"): 2})
    registry = CollectorRegistry()
    registry.register(collector)
    ours = exposition_samples(collector.exposition().decode())
    theirs = exposition_samples(generate_latest(registry).decode())
    assert ours == theirs
    assert ours[("driftd_feature_psi", (("feature", odd), ("monitor", "m1")))] == 0.3
    assert ours[("driftd_alarms_firing", (("monitor", "m1"), ("severity", "P2")))] == 2
    assert ours[("driftd_alarms_firing", (("monitor", "m1"), ("severity", "P1")))] == 0


def test_new_snapshot_refreshes_and_gone_monitors_disappear():
    mon, other = monitor(["a"]), monitor(["a"], "m2")
    state = {"snaps": [(mon, snapshot({"a": 0.1}, 1)), (other, snapshot({"a": 0.1}, 1))]}
    collector = DriftCollector(lambda: state["snaps"], lambda: {})
    first = exposition_samples(collector.exposition().decode())
    assert first[("driftd_feature_psi", (("feature", "a"), ("monitor", "m1")))] == 0.1
    state["snaps"] = [(mon, snapshot({"a": 0.5}, 2)), (other, None)]  # m1 re-evaluated, m2 has no snapshot (deleted/unloaded)
    second = exposition_samples(collector.exposition().decode())
    assert second[("driftd_feature_psi", (("feature", "a"), ("monitor", "m1")))] == 0.5
    assert not [k for k in second if ("monitor", "m2") in k[1]]

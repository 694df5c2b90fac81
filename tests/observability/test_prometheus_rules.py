"""Generated Prometheus rules: `promtool check rules` accepts them and `promtool test rules` shows
they fire exactly on the series they should (and not on the others), per rule kind."""

from __future__ import annotations

from datetime import datetime, timezone

import yaml

from driftd.server.domain.monitor import (
    AlarmRule,
    CalibratedLevel,
    CompositeCondition,
    CompositeMode,
    Direction,
    MetricCondition,
    Monitor,
    MonitorSpec,
    NumericFeature,
    Schema,
    Severity,
    WindowSpec,
    EmbeddingBlock,
)
from driftd.server.domain.alarms import default_rules
from driftd.server.observability.prom_rules import alert_name, rules_document

from .tools import promtool

NOW = datetime(2026, 1, 1, tzinfo=timezone.utc)


def monitor(rules, monitor_id="fraud") -> Monitor:
    schema = Schema(numeric=(NumericFeature("age"), NumericFeature("amount")), embeddings=(EmbeddingBlock("text", 8),))
    spec = MonitorSpec(schema=schema, window=WindowSpec(pane_seconds=60, pane_count=5), rules=tuple(rules))
    return Monitor(monitor_id, spec, NOW, NOW, "e1")


def metric_rule(rule_id, selector, *, fixed=None, level=None, direction=Direction.ABOVE, max_p=None, min_samples=0,
                for_evaluations=0, keep=0.0, severity=Severity.P2, summary=""):
    return AlarmRule(rule_id, MetricCondition(selector, direction, fixed_threshold=fixed, calibrated_threshold=level, max_p_value=max_p),
                     min_samples=min_samples, for_evaluations=for_evaluations, keep_firing_for_seconds=keep, severity=severity,
                     summary=summary)


RULES = [
    metric_rule("psi-fixed", "feature_psi", fixed=0.25, min_samples=500, for_evaluations=2,
                summary="{feature} on {monitor}: PSI {value} > {threshold}"),
    metric_rule("psi-calibrated", 'feature_psi{feature="age"}', level=CalibratedLevel.CRITICAL, severity=Severity.P3,
                summary="{feature}: PSI {value} above {threshold}"),
    metric_rule("mmd", 'embedding_mmd2{block="text"}', level=CalibratedLevel.CRITICAL, max_p=0.01),
    metric_rule("accuracy-drop", "accuracy", fixed=0.8, direction=Direction.BELOW, keep=120.0,
                summary="{monitor}: accuracy {value} below {threshold}"),
    metric_rule("slow", "latency_p99_ms", fixed=250.0, summary="p99 {value} above {threshold}"),
    AlarmRule("both", composite=CompositeCondition(CompositeMode.ALL, ("psi-calibrated", "accuracy-drop")), severity=Severity.P1,
              summary="{rule}: {value} of {threshold} conditions"),
    AlarmRule("two-of-three", composite=CompositeCondition(CompositeMode.K_OF_N, ("psi-fixed", "mmd", "slow"), k=2),
              summary="{rule}: {value} of {threshold} conditions"),
]


def write_rules(tmp_path, monitors) -> str:
    path = tmp_path / "driftd.rules.yml"
    path.write_text(yaml.safe_dump(rules_document(monitors), sort_keys=False))
    return str(path)


def test_alert_names_are_metric_names():
    assert alert_name("feature-drift") == "DriftdFeatureDrift"
    assert alert_name("embedding-drift-text_v2") == "DriftdEmbeddingDriftTextV2"


def test_promtool_accepts_every_rule_kind_and_the_default_pack(tmp_path):
    m = monitor(RULES)
    defaults = monitor(default_rules(monitor([]).spec.schema), "defaults")
    result = promtool("check", "rules", write_rules(tmp_path, [m, defaults]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(RULES) + len(defaults.spec.rules)} rules found" in result.stdout


def test_promtool_unit_tests_fire_exactly_where_they_should(tmp_path):
    rules_file = write_rules(tmp_path, [monitor(RULES)])
    m = 'monitor="fraud"'
    series = [
        # age drifts (0.4 > 0.25 and > its calibrated 0.1); amount stays low; 1000 rows in the window
        (f'driftd_feature_psi{{{m},feature="age"}}', "0.4x20"),
        (f'driftd_feature_psi{{{m},feature="amount"}}', "0.05x20"),
        (f'driftd_feature_psi_threshold{{{m},feature="age",level="critical"}}', "0.1x20"),
        (f'driftd_feature_psi_threshold{{{m},feature="amount",level="critical"}}', "0.1x20"),
        (f"driftd_window_rows{{{m}}}", "1000x20"),
        # MMD above its threshold but the p-value is not small: must not fire
        (f'driftd_embedding_mmd2{{{m},block="text"}}', "0.3x20"),
        (f'driftd_embedding_mmd2_threshold{{{m},block="text",level="critical"}}', "0.1x20"),
        (f'driftd_embedding_pvalue{{{m},block="text"}}', "0.2x20"),
        # accuracy drops below 0.8 for 3 minutes, then recovers; keep_firing_for 2m holds it
        (f"driftd_model_accuracy{{{m}}}", "0.9 0.9 0.7 0.7 0.7 0.9x15"),
        # p99 latency 0.3 s = 300 ms > 250 ms (rule threshold in ms, series in seconds)
        (f"driftd_request_latency_p99_seconds{{{m}}}", "0.3x20"),
    ]
    labels = {"monitor": "fraud"}
    tests = {
        "rule_files": [rules_file],
        "evaluation_interval": "1m",
        "tests": [{
            "interval": "1m",
            "input_series": [{"series": s, "values": v} for s, v in series],
            "alert_rule_test": [
                # for: 2 evaluations x 60 s -> pending at 1m, firing from 2m; only age
                {"eval_time": "1m", "alertname": "DriftdPsiFixed", "exp_alerts": []},
                {"eval_time": "3m", "alertname": "DriftdPsiFixed", "exp_alerts": [{
                    "exp_labels": {**labels, "feature": "age", "severity": "P2", "rule": "psi-fixed"},
                    "exp_annotations": {"summary": "age on fraud: PSI 400m > 0.25", "runbook": _default_runbook("fraud"),
                                        "description": "driftd monitor fraud, rule psi-fixed: feature_psi is above 0.25; "
                                                       "at least 500 rows in the window; for 2 evaluations (120s)."}}]},
                {"eval_time": "3m", "alertname": "DriftdPsiCalibrated", "exp_alerts": [{
                    "exp_labels": {**labels, "feature": "age", "severity": "P3", "rule": "psi-calibrated"},
                    "exp_annotations": ann("age: PSI 400m above 100m", "psi-calibrated")}]},
                {"eval_time": "5m", "alertname": "DriftdMmd", "exp_alerts": []},
                {"eval_time": "1m", "alertname": "DriftdAccuracyDrop", "exp_alerts": []},
                {"eval_time": "3m", "alertname": "DriftdAccuracyDrop", "exp_alerts": [{
                    "exp_labels": {**labels, "severity": "P2", "rule": "accuracy-drop"}, "exp_annotations": ann("fraud: accuracy 700m below 0.8", "accuracy-drop")}]},
                # recovered at 5m, still firing through keep_firing_for (2m), gone after
                {"eval_time": "6m", "alertname": "DriftdAccuracyDrop", "exp_alerts": [{
                    "exp_labels": {**labels, "severity": "P2", "rule": "accuracy-drop"}, "exp_annotations": ann("fraud: accuracy 700m below 0.8", "accuracy-drop")}]},
                {"eval_time": "8m", "alertname": "DriftdAccuracyDrop", "exp_alerts": []},
                {"eval_time": "3m", "alertname": "DriftdSlow", "exp_alerts": [{
                    "exp_labels": {**labels, "severity": "P2", "rule": "slow"}, "exp_annotations": ann("p99 300ms above 250ms", "slow")}]},
                # composite all: calibrated PSI and accuracy both hold only while accuracy is low
                {"eval_time": "1m", "alertname": "DriftdBoth", "exp_alerts": []},
                {"eval_time": "3m", "alertname": "DriftdBoth", "exp_alerts": [{
                    "exp_labels": {**labels, "severity": "P1", "rule": "both"}, "exp_annotations": ann("both: 2 of 2 conditions", "both")}]},
                {"eval_time": "10m", "alertname": "DriftdBoth", "exp_alerts": []},
                # 2 of (psi-fixed, mmd, slow): psi-fixed and slow hold, mmd is gated by its p-value
                {"eval_time": "3m", "alertname": "DriftdTwoOfThree", "exp_alerts": [{
                    "exp_labels": {**labels, "severity": "P3", "rule": "two-of-three"}, "exp_annotations": ann("two-of-three: 2 of 2 conditions", "two-of-three")}]},
            ],
        }],
    }
    test_file = tmp_path / "driftd.rules.test.yml"
    test_file.write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(test_file))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _default_runbook(monitor_id: str) -> str:
    from driftd.server.domain.alarms import default_runbook

    return default_runbook(AlarmRule("x")).format(monitor=monitor_id)


def ann(summary: str, rule_id: str) -> dict:
    from driftd.server.observability.prom_rules import describe

    rule = next(r for r in RULES if r.rule_id == rule_id)
    return {"summary": summary, "runbook": _default_runbook("fraud"), "description": describe(rule, "fraud", 60.0)}


async def test_export_cli_from_data_dir_and_server_agree_and_bad_input_is_one_line(tmp_path):
    import asyncio
    import json

    from typer.testing import CliRunner

    from driftd.client import Client
    from driftd.server.cli import app
    from support import start_served, stop_served

    served = await start_served(tmp_path / "data")
    try:
        def create():
            with Client(f"127.0.0.1:{served.port}") as client:
                client.create_monitor("fraud", numeric=["age", "amount"], scores=["p"])
                client.create_monitor("other", numeric=["x"])
        await asyncio.to_thread(create)
        runner = CliRunner()
        remote = await asyncio.to_thread(runner.invoke, app, ["export", "prometheus-rules", "--target", f"127.0.0.1:{served.port}",
                                                              "-m", "fraud"])
        local = await asyncio.to_thread(runner.invoke, app, ["export", "prometheus-rules", "--data-dir", str(tmp_path / "data"),
                                                             "-m", "fraud"])
        unknown = await asyncio.to_thread(runner.invoke, app, ["export", "prometheus-rules", "--target", f"127.0.0.1:{served.port}",
                                                               "-m", "nope"])
        every = await asyncio.to_thread(runner.invoke, app, ["export", "prometheus-rules", "--target", f"127.0.0.1:{served.port}"])
    finally:
        await stop_served(served)
    assert remote.exit_code == 0 and local.exit_code == 0, remote.output + local.output
    assert remote.stdout == local.stdout
    doc = yaml.safe_load(remote.stdout)
    assert [g["name"] for g in doc["groups"]] == ["driftd.fraud"]
    assert {r["alert"] for r in doc["groups"][0]["rules"]} >= {"DriftdFeatureDrift", "DriftdPredictionDrift", "DriftdErrorRate"}
    assert [g["name"] for g in yaml.safe_load(every.stdout)["groups"]] == ["driftd.fraud", "driftd.other"]
    assert unknown.exit_code == 1 and "unknown monitor 'nope'" in unknown.output
    missing = CliRunner().invoke(app, ["export", "prometheus-rules", "--data-dir", str(tmp_path / "no-such-dir")])
    assert missing.exit_code == 2 and "no driftd store" in missing.output
    dash = CliRunner().invoke(app, ["export", "grafana-dashboard", "--title", "ML fleet"])
    assert dash.exit_code == 0 and json.loads(dash.stdout)["title"] == "ML fleet"


def test_every_alarm_metric_maps_to_an_exported_series_and_valid_promql(tmp_path):
    from driftd.server.domain.monitor import SELECTOR_METRICS
    from driftd.server.observability.drift_metrics import family_names
    from driftd.server.observability.series import ALL_SERIES

    rules = []
    for i, (metric, label) in enumerate(sorted(SELECTOR_METRICS.items())):
        assert ALL_SERIES[metric].name in family_names(), metric
        selector = f'{metric}{{{label}="x"}}' if label else metric
        rules.append(metric_rule(f"r{i}-fixed", selector, fixed=1.0, min_samples=10, for_evaluations=1))
        rules.append(metric_rule(f"r{i}-calibrated", selector, level=CalibratedLevel.WARNING, direction=Direction.BELOW,
                                 max_p=0.05 if f"{metric}_pvalue" in SELECTOR_METRICS else None))
    result = promtool("check", "rules", write_rules(tmp_path, [monitor(rules)]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


def test_edge_cases_the_engine_accepts_export_to_rules_promtool_accepts(tmp_path):
    """Forward and cyclic composite references (false in the engine), a p-value gate on a statistic
    without a p-value (never true), infinite thresholds, literal braces in user text, rule labels
    named like reserved ones, a composite's min_samples."""
    rules = [
        AlarmRule("early", composite=CompositeCondition(CompositeMode.ANY, ("late",)), min_samples=100,
                  summary="literal {{ braces }} and {monitor}"),
        metric_rule("late", 'feature_psi{feature="age"}', fixed=0.1),
        AlarmRule("cycle-a", composite=CompositeCondition(CompositeMode.ANY, ("cycle-b",))),
        AlarmRule("cycle-b", composite=CompositeCondition(CompositeMode.ANY, ("cycle-a",))),
        metric_rule("gated", "feature_psi", fixed=0.1, max_p=0.05),
        metric_rule("never", "feature_psi", fixed=float("inf")),
        AlarmRule("labelled", MetricCondition("error_rate", Direction.ABOVE, fixed_threshold=0.1),
                  labels=(("severity", "page"), ("monitor", "x"), ("team", "ml"))),
    ]
    m = monitor(rules)
    group = rules_document([m])["groups"][0]
    by_rule = {r["labels"]["rule"]: r for r in group["rules"]}
    assert by_rule["early"]["expr"].startswith("((vector(0)) >= 1) and on() (driftd_window_rows")
    assert "vector(0)" in by_rule["cycle-b"]["expr"] and "driftd_" not in by_rule["cycle-a"]["expr"]
    assert "unless on() vector(1)" in by_rule["gated"]["expr"]
    assert "+Inf" in by_rule["never"]["expr"]
    assert by_rule["labelled"]["labels"] == {"severity": "P3", "monitor": "fraud", "rule": "labelled", "team": "ml"}
    check = promtool("check", "rules", write_rules(tmp_path, [m]))
    assert check.returncode == 0, check.stdout + check.stderr
    series = [('driftd_feature_psi{monitor="fraud",feature="age"}', "0.5x10"), ('driftd_window_rows{monitor="fraud"}', "1000x10"),
              ('driftd_feature_psi_pvalue{monitor="fraud",feature="age"}', "0.001x10")]
    tests = {"rule_files": [str(tmp_path / "driftd.rules.yml")], "evaluation_interval": "1m", "tests": [{
        "interval": "1m", "input_series": [{"series": a, "values": b} for a, b in series],
        "alert_rule_test": [
            {"eval_time": "2m", "alertname": "DriftdEarly", "exp_alerts": []},   # forward reference: false
            {"eval_time": "2m", "alertname": "DriftdCycleA", "exp_alerts": []},
            {"eval_time": "2m", "alertname": "DriftdCycleB", "exp_alerts": []},
            {"eval_time": "2m", "alertname": "DriftdGated", "exp_alerts": []},   # feature_psi has no p-value series
            {"eval_time": "2m", "alertname": "DriftdNever", "exp_alerts": []},
            {"eval_time": "2m", "alertname": "DriftdLate", "exp_alerts": [{
                "exp_labels": {"monitor": "fraud", "feature": "age", "severity": "P2", "rule": "late"},
                "exp_annotations": {**_annotations(m, "late")}}]},
        ]}]}
    (tmp_path / "t.yml").write_text(yaml.safe_dump(tests, sort_keys=False))
    result = promtool("test", "rules", str(tmp_path / "t.yml"))
    assert result.returncode == 0, result.stdout + result.stderr


def _annotations(m, rule_id: str) -> dict:
    """Annotations of a rule whose texts have no per-alert templates except $labels.feature / $value."""
    from driftd.server.observability.prom_rules import monitor_rule_group

    raw = next(r for r in monitor_rule_group(m)["rules"] if r["labels"]["rule"] == rule_id)["annotations"]
    return {k: v.replace("{{ $labels.feature }}", "age").replace("{{ $value | humanize }}", "500m") for k, v in raw.items()}

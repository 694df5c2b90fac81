"""A Grafana dashboard (JSON model, schemaVersion 39) over driftd's `/metrics`, templated on monitor.

Rows as in design §5: service health, model quality, data drift, prediction distribution vs
baseline, embedding drift, alarm history. Every query only names series that `/metrics` exports
(tests/observability checks each one against a live scrape).

>>> d = dashboard()
>>> [p["title"] for p in d["panels"] if p["type"] == "row"][:2]
['Service health', 'Model quality']
"""

from __future__ import annotations

from typing import Any

DS = {"type": "prometheus", "uid": "${datasource}"}
M = 'monitor=~"$monitor"'

# (row title, [(panel title, type, [(expr, legend)], unit, width)])
_ROWS: list[tuple[str, list[tuple[str, str, list[tuple[str, str]], str, int]]]] = [
    ("Service health", [
        ("RPCs per second", "timeseries", [("sum by (method) (rate(driftd_rpc_requests_total[$__rate_interval]))", "{{method}}")], "reqps", 8),
        ("RPC errors per second", "timeseries", [('sum by (method, code) (rate(driftd_rpc_requests_total{code!="OK"}[$__rate_interval]))',
                                                  "{{method}} {{code}}")], "reqps", 8),
        ("p99 latency (unary RPCs, batch ack)", "timeseries", [
            ("histogram_quantile(0.99, sum by (le, method) (rate(driftd_rpc_duration_seconds_bucket[$__rate_interval])))", "{{method}}"),
            ("histogram_quantile(0.99, sum by (le) (rate(driftd_ingest_batch_seconds_bucket[$__rate_interval])))", "batch ack")], "s", 8),
        ("Rows ingested per second", "timeseries", [(f"sum by (monitor, outcome) (rate(driftd_ingest_rows_total{{{M}}}[$__rate_interval]))",
                                                     "{{monitor}} {{outcome}}")], "short", 8),
        ("Ingest queue depth", "timeseries", [(f"driftd_ingest_queue_depth{{{M}}}", "{{monitor}}")], "short", 8),
        ("Evaluation p99", "timeseries", [(f"histogram_quantile(0.99, sum by (le, monitor) "
                                           f"(rate(driftd_evaluation_duration_seconds_bucket{{{M}}}[$__rate_interval])))", "{{monitor}}")], "s", 8),
    ]),
    ("Model quality", [
        ("Accuracy / F1 / AUROC", "timeseries", [(f"driftd_model_accuracy{{{M}}}", "accuracy {{monitor}}"),
                                                 (f"driftd_model_f1{{{M}}}", "F1 {{monitor}}"),
                                                 (f"driftd_model_auroc{{{M}}}", "AUROC {{monitor}}")], "percentunit", 12),
        ("Calibration (ECE, Brier)", "timeseries", [(f"driftd_model_ece{{{M}}}", "ECE {{monitor}}"),
                                                    (f"driftd_model_brier_score{{{M}}}", "Brier {{monitor}}")], "short", 6),
        ("Labelled rows / label delay p50", "timeseries", [(f"driftd_model_labelled_rows{{{M}}}", "labelled {{monitor}}"),
                                                           (f"driftd_label_delay_p50_seconds{{{M}}}", "delay p50 s {{monitor}}")], "short", 6),
    ]),
    ("Data drift", [
        ("Drifted features", "stat", [(f"driftd_drifted_features{{{M}}}", "{{monitor}}")], "short", 6),
        ("Verdict", "stat", [(f'driftd_monitor_verdict{{{M}}} == 1', "{{monitor}} {{verdict}}")], "short", 6),
        ("Window rows", "stat", [(f"driftd_window_rows{{{M}}}", "{{monitor}}")], "short", 6),
        ("Null / out-of-range rates", "timeseries", [(f"driftd_feature_nan_rate{{{M}}}", "NaN {{feature}}"),
                                                     (f"driftd_feature_out_of_range_rate{{{M}}}", "range {{feature}}")], "percentunit", 6),
        ("PSI per feature", "timeseries", [(f"driftd_feature_psi{{{M}}}", "{{monitor}} {{feature}}")], "short", 12),
        ("PSI vs calibrated critical threshold", "bargauge", [(f'driftd_feature_psi{{{M}}} / ignoring(level) '
                                                              f'driftd_feature_psi_threshold{{{M},level="critical"}}', "{{feature}}")], "short", 12),
        ("KS statistic per feature", "timeseries", [(f"driftd_feature_ks{{{M}}}", "{{monitor}} {{feature}}")], "short", 12),
        ("Wasserstein-1 per feature", "timeseries", [(f"driftd_feature_w1{{{M}}}", "{{monitor}} {{feature}}")], "short", 12),
    ]),
    ("Prediction distribution vs baseline", [
        ("Positive rate vs baseline", "timeseries", [(f"driftd_prediction_positive_rate{{{M}}}", "live {{output}}"),
                                                     (f"driftd_prediction_baseline_positive_rate{{{M}}}", "baseline {{output}}")], "percentunit", 12),
        ("Prediction PSI / KS", "timeseries", [(f"driftd_prediction_psi{{{M}}}", "PSI {{output}}"),
                                               (f"driftd_prediction_ks{{{M}}}", "KS {{output}}")], "short", 12),
        ("Request latency p50 / p99", "timeseries", [(f"driftd_request_latency_p50_seconds{{{M}}}", "p50 {{monitor}}"),
                                                     (f"driftd_request_latency_p99_seconds{{{M}}}", "p99 {{monitor}}")], "s", 12),
        ("Request error rate", "timeseries", [(f"driftd_request_error_rate{{{M}}}", "{{monitor}}")], "percentunit", 12),
    ]),
    ("Embedding drift", [
        ("MMD² (unbiased)", "timeseries", [(f"driftd_embedding_mmd2{{{M}}}", "{{monitor}} {{block}}")], "short", 8),
        ("MMD² permutation p-value", "timeseries", [(f"driftd_embedding_pvalue{{{M}}}", "{{monitor}} {{block}}")], "short", 8),
        ("Centroid cosine distance", "timeseries", [(f"driftd_embedding_centroid_cosine_distance{{{M}}}", "{{monitor}} {{block}}")], "short", 8),
    ]),
    ("Alarm history", [
        ("Alarms firing by severity", "timeseries", [(f"sum by (severity) (driftd_alarms_firing{{{M}}})", "{{severity}}")], "short", 12),
        ("Alarm events per hour", "timeseries", [("sum by (severity, state) (increase(driftd_alarm_events_total[1h]))",
                                                  "{{severity}} {{state}}")], "short", 12),
    ]),
]


def _panel(pid: int, title: str, kind: str, targets: list[tuple[str, str]], unit: str, width: int, x: int, y: int) -> dict[str, Any]:
    return {
        "id": pid, "type": kind, "title": title, "datasource": DS,
        "gridPos": {"h": 8, "w": width, "x": x, "y": y},
        "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
        "options": {},
        "targets": [{"refId": chr(ord("A") + i), "datasource": DS, "expr": expr, "legendFormat": legend}
                    for i, (expr, legend) in enumerate(targets)],
    }


def dashboard(title: str = "driftd", uid: str = "driftd-overview") -> dict[str, Any]:
    """The dashboard JSON model (import it in Grafana, or provision it from a file)."""
    panels: list[dict[str, Any]] = []
    pid, y = 1, 0
    for row_title, row_panels in _ROWS:
        panels.append({"id": pid, "type": "row", "title": row_title, "collapsed": False,
                       "gridPos": {"h": 1, "w": 24, "x": 0, "y": y}, "panels": []})
        pid, y, x = pid + 1, y + 1, 0
        for panel_title, kind, targets, unit, width in row_panels:
            if x + width > 24:
                x, y = 0, y + 8
            panels.append(_panel(pid, panel_title, kind, targets, unit, width, x, y))
            pid, x = pid + 1, x + width
        y += 8
    return {
        "uid": uid, "title": title, "tags": ["driftd", "ml-monitoring"], "timezone": "browser",
        "schemaVersion": 39, "version": 1, "editable": True, "refresh": "30s",
        "time": {"from": "now-6h", "to": "now"},
        "templating": {"list": [
            {"name": "datasource", "type": "datasource", "query": "prometheus", "label": "Data source",
             "current": {}, "hide": 0, "refresh": 1},
            {"name": "monitor", "type": "query", "label": "Monitor", "datasource": DS,
             "query": {"query": "label_values(driftd_window_rows, monitor)", "refId": "monitor"},
             "definition": "label_values(driftd_window_rows, monitor)",
             "multi": True, "includeAll": True, "allValue": ".*", "current": {}, "refresh": 2, "sort": 1, "hide": 0},
        ]},
        "annotations": {"list": [{"name": "Alarms firing", "datasource": DS, "enable": True, "iconColor": "red",
                                  "expr": f"changes(sum by (monitor) (driftd_alarms_firing{{{M}}})[5m:]) > 0"}]},
        "panels": panels,
    }


def panel_queries(model: dict[str, Any]) -> list[str]:
    """Every PromQL expression in a dashboard model (panels, variables, annotations)."""
    out = [t["expr"] for p in model["panels"] for t in p.get("targets", [])]
    out += [v["definition"] for v in model["templating"]["list"] if v.get("definition")]
    out += [a["expr"] for a in model["annotations"]["list"] if a.get("expr")]
    return out

"""One table from the alarm engine's metric names to Prometheus series.

A snapshot's metric frame (`engine_adapter.metric_frame`: `feature_psi{feature="age"}`,
`latency_p99_ms`, ...) is what alarm rules read; the same frame is what `/metrics` exports and what
generated Prometheus rules query. This module is the only place that knows how one becomes the
other, so the three can never disagree.

Every series gets a ``monitor`` label. Names follow Prometheus conventions (base units, so the
latency quantiles are exported in seconds, and ``scale`` converts a rule threshold written in the
frame's unit into the exported one). promtool reserves a ``quantile`` label for summaries, so each
quantile is its own gauge.

>>> promql_selector("feature_psi", (("feature", "age"),), "fraud")
'driftd_feature_psi{monitor="fraud",feature="age"}'
>>> s = series_for("latency_p99_ms"); (s.name, s.scale)
('driftd_request_latency_p99_seconds', 0.001)
"""

from __future__ import annotations

from dataclasses import dataclass

from driftd.server.domain.monitor import SELECTOR_METRICS


@dataclass(frozen=True)
class Series:
    metric: str                    # the frame / alarm-selector name
    name: str                      # the Prometheus metric name
    help: str
    label: str | None              # feature / block / output, or None for monitor-level series
    const_labels: tuple[tuple[str, str], ...] = ()
    scale: float = 1.0             # exported value = frame value * scale


_HELP = {
    "psi": "population stability index (bins from the baseline's deciles, +1e-4 smoothing)",
    "kl": "KL divergence KL(baseline || current), nats",
    "js": "Jensen-Shannon divergence, base 2",
    "ks": "two-sample Kolmogorov-Smirnov statistic against the baseline's reference sample",
    "ks_pvalue": "p-value of the two-sample KS test (asymptotic)",
    "w1": "Wasserstein-1 distance to the baseline's reference sample",
    "w1_relative": "Wasserstein-1 distance divided by the baseline's standard deviation",
    "nan_rate": "share of rows with NaN in the window",
    "out_of_range_rate": "share of rows outside the declared range",
    "outlier_rate": "share of rows outside the baseline's IQR fences (1.5 IQR)",
    "chi2": "chi-square statistic of the category counts against the baseline",
    "chi2_pvalue": "p-value of the chi-square test",
    "unseen_rate": "share of rows with a category the baseline never saw",
    "missing_rate": "share of rows with a missing category",
}

# Frame names that are renamed or rescaled on the way out (everything else: driftd_<metric>).
_OVERRIDES: dict[str, tuple[str, tuple[tuple[str, str], ...], float, str]] = {
    "embedding_mmd2_pvalue": ("driftd_embedding_pvalue", (), 1.0, "permutation p-value of the MMD² test"),
    "embedding_centroid_cosine": ("driftd_embedding_centroid_cosine_distance", (), 1.0,
                                  "cosine distance between the window's and the baseline's embedding centroids"),
    "latency_p50_ms": ("driftd_request_latency_p50_seconds", (), 0.001, "p50 request latency in the window (sketch, 1 % relative error)"),
    "latency_p95_ms": ("driftd_request_latency_p95_seconds", (), 0.001, "p95 request latency in the window (sketch, 1 % relative error)"),
    "latency_p99_ms": ("driftd_request_latency_p99_seconds", (), 0.001, "p99 request latency in the window (sketch, 1 % relative error)"),
    "error_rate": ("driftd_request_error_rate", (), 1.0, "share of requests in the window with an error status code"),
    "row_count": ("driftd_window_rows", (), 1.0, "rows in the evaluated window"),
    "drifted_features": ("driftd_drifted_features", (), 1.0, "columns over their own critical threshold in the latest snapshot"),
    "accuracy": ("driftd_model_accuracy", (), 1.0, "accuracy on labelled rows in the window"),
    "precision": ("driftd_model_precision", (), 1.0, "precision on labelled rows in the window"),
    "recall": ("driftd_model_recall", (), 1.0, "recall on labelled rows in the window"),
    "f1": ("driftd_model_f1", (), 1.0, "F1 on labelled rows in the window"),
    "auroc": ("driftd_model_auroc", (), 1.0, "area under the ROC curve on labelled rows in the window"),
    "brier": ("driftd_model_brier_score", (), 1.0, "Brier score on labelled rows in the window"),
    "ece": ("driftd_model_ece", (), 1.0, "expected calibration error (10 bins) on labelled rows in the window"),
    "cusum_error": ("driftd_model_error_cusum", (), 1.0, "CUSUM of the labelled error stream (concept drift)"),
    "page_hinkley": ("driftd_model_error_page_hinkley", (), 1.0, "Page-Hinkley statistic of the labelled error stream"),
    "score_positive_rate": ("driftd_prediction_positive_rate", (), 1.0, "share of predictions above the output's positive threshold"),
    "score_positive_rate_delta": ("driftd_prediction_positive_rate_delta", (), 1.0,
                                  "prediction positive rate minus the baseline's"),
}

_PREFIX_HELP = {"feature": "feature", "embedding": "embedding block", "score": "prediction output"}


def series_for(metric: str) -> Series:
    """The Prometheus series of one frame metric name (KeyError for an unknown name)."""
    label = SELECTOR_METRICS[metric]
    if metric in _OVERRIDES:
        name, const, scale, help_ = _OVERRIDES[metric]
        return Series(metric, name, help_, label, const, scale)
    prefix, _, stat = metric.partition("_")
    if prefix == "score":
        name = f"driftd_prediction_{stat}"
    else:
        name = f"driftd_{metric}"
    what = _HELP.get(stat, stat.replace("_", " "))
    return Series(metric, name, f"{_PREFIX_HELP.get(prefix, prefix)} {what}, latest snapshot", label)


ALL_SERIES: dict[str, Series] = {m: series_for(m) for m in SELECTOR_METRICS}

# Calibrated thresholds (the baseline's p95 / p99 of the statistic) go out as one extra series per
# metric, `<name>_threshold{level="warning"|"critical"}`, so generated Prometheus rules with a
# calibrated threshold can compare against them.
THRESHOLD_SUFFIX = "_threshold"


def _quote(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def promql_selector(metric: str, labels: tuple[tuple[str, str], ...], monitor: str, *, threshold_level: str | None = None) -> str:
    """`driftd_<name>{monitor="m",<const labels>,<selector labels>}` for one frame metric."""
    s = ALL_SERIES[metric]
    pairs = [("monitor", monitor), *s.const_labels, *labels]
    name = s.name
    if threshold_level is not None:
        name += THRESHOLD_SUFFIX
        pairs.append(("level", threshold_level))
    return name + "{" + ",".join(f'{k}="{_quote(v)}"' for k, v in pairs) + "}"

"""Snapshot: the evaluation of one window against a baseline — plain dataclasses, `to_dict()`.

Every statistic is a `StatisticValue`: the value, its p-value (tests that have one), the warning
and critical thresholds in force, the verdict, the sample sizes on both sides and an effect size —
never only a boolean. `to_dict()` gives JSON-safe values (NaN / inf become None, enums their
string value) for the transport to map onto `driftd.v1.Snapshot`.

>>> s = StatisticValue(value=0.3, warning_threshold=0.1, critical_threshold=0.2)
>>> s.judge().verdict
<Verdict.CRITICAL: 'critical'>
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np


class Verdict(str, Enum):
    OK = "ok"
    WARNING = "warning"
    CRITICAL = "critical"
    INSUFFICIENT_DATA = "insufficient_data"

    @property
    def rank(self) -> int:
        return {"insufficient_data": 0, "ok": 1, "warning": 2, "critical": 3}[self.value]


def worst(verdicts) -> Verdict:
    vs = list(verdicts)
    return max(vs, key=lambda v: v.rank) if vs else Verdict.INSUFFICIENT_DATA


@dataclass(frozen=True)
class StatisticValue:
    value: float
    p_value: float | None = None
    warning_threshold: float | None = None
    critical_threshold: float | None = None
    verdict: Verdict = Verdict.INSUFFICIENT_DATA
    sample_size: int = 0
    baseline_sample_size: int = 0
    effect_size: float | None = None

    def judge(self, *, min_samples: int = 0, two_sided: bool = False) -> "StatisticValue":
        """Copy with the verdict: value (|value| when two-sided) above critical / warning threshold."""
        v = abs(self.value) if two_sided else self.value
        if self.value is None or not math.isfinite(self.value) or self.sample_size < min_samples:
            verdict = Verdict.INSUFFICIENT_DATA
        elif self.critical_threshold is not None and math.isfinite(self.critical_threshold) and v > self.critical_threshold:
            verdict = Verdict.CRITICAL
        elif self.warning_threshold is not None and math.isfinite(self.warning_threshold) and v > self.warning_threshold:
            verdict = Verdict.WARNING
        elif (self.warning_threshold is None or not math.isfinite(self.warning_threshold)) and (
                self.critical_threshold is None or not math.isfinite(self.critical_threshold)):
            verdict = Verdict.INSUFFICIENT_DATA
        else:
            verdict = Verdict.OK
        return dataclasses.replace(self, verdict=verdict)


@dataclass(frozen=True)
class NumericFeatureDrift:
    feature: str
    sample_count: int
    baseline_sample_count: int
    psi: StatisticValue
    kl: StatisticValue
    js: StatisticValue
    ks: StatisticValue
    w1: StatisticValue
    w1_relative: float
    nan_rate: StatisticValue
    out_of_range_rate: StatisticValue
    outlier_rate: StatisticValue
    mean: float
    std: float
    baseline_mean: float
    baseline_std: float
    bucket_counts: list[int]
    verdict: Verdict
    reasons: list[str]


@dataclass(frozen=True)
class CategoryShare:
    code: int
    category: str
    share: float
    baseline_share: float


@dataclass(frozen=True)
class CategoricalFeatureDrift:
    feature: str
    sample_count: int
    baseline_sample_count: int
    chi2: StatisticValue
    psi: StatisticValue
    js: StatisticValue
    kl: StatisticValue
    unseen_rate: StatisticValue
    missing_rate: StatisticValue
    shares: list[CategoryShare]
    verdict: Verdict
    reasons: list[str]


@dataclass(frozen=True)
class EmbeddingDrift:
    block: str
    sample_count: int
    baseline_sample_count: int
    mmd2_unbiased: StatisticValue
    mmd2_biased: float
    bandwidths: list[float]
    permutations: int
    centroid_cosine_distance: StatisticValue
    nonfinite_rows: int
    verdict: Verdict
    reasons: list[str]


@dataclass(frozen=True)
class ScoreDrift:
    output: str
    sample_count: int
    baseline_sample_count: int
    psi: StatisticValue
    ks: StatisticValue
    js: StatisticValue
    positive_rate: float
    baseline_positive_rate: float
    positive_rate_delta: StatisticValue
    mean: float
    baseline_mean: float
    verdict: Verdict
    reasons: list[str]


@dataclass(frozen=True)
class LatencyStats:
    sample_count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    relative_error: float
    status_count: int
    error_count: int
    error_rate: float


@dataclass(frozen=True)
class LabelQuality:
    labelled_count: int
    accuracy: float
    precision: float
    recall: float
    f1: float
    auroc: float
    brier: float
    ece: float
    label_delay_p50_s: float
    label_delay_max_s: float
    cusum_error: float
    cusum_threshold: float
    page_hinkley: float
    page_hinkley_threshold: float
    concept_drift_detected: bool


@dataclass(frozen=True)
class Snapshot:
    baseline_data_hash: str
    window_start: float  # unix seconds
    window_end: float
    evaluate_time: float
    row_count: int
    numeric_features: list[NumericFeatureDrift] = field(default_factory=list)
    categorical_features: list[CategoricalFeatureDrift] = field(default_factory=list)
    embedding_blocks: list[EmbeddingDrift] = field(default_factory=list)
    score_outputs: list[ScoreDrift] = field(default_factory=list)
    latency: LatencyStats | None = None
    label_quality: LabelQuality | None = None
    # columns over their own (per-column) warning / critical thresholds
    drifted_features: int = 0
    # family-wise: see evaluation.group_verdict; embeddings and data-quality rates count directly
    verdict: Verdict = Verdict.INSUFFICIENT_DATA
    verdict_reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return jsonable(dataclasses.asdict(self))


def jsonable(v: Any) -> Any:
    """JSON-safe copy: NaN / inf -> None, numpy scalars -> Python, enums -> value."""
    if isinstance(v, Enum):
        return v.value
    if isinstance(v, dict):
        return {str(k): jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [jsonable(x) for x in v]
    if isinstance(v, np.ndarray):
        return [jsonable(x) for x in v.tolist()]
    if isinstance(v, (np.bool_, bool)):
        return bool(v)
    if isinstance(v, (np.integer, int)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        f = float(v)
        return f if math.isfinite(f) else None
    return v

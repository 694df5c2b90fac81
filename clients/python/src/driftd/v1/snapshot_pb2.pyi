import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Verdict(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    VERDICT_UNSPECIFIED: _ClassVar[Verdict]
    VERDICT_OK: _ClassVar[Verdict]
    VERDICT_WARNING: _ClassVar[Verdict]
    VERDICT_CRITICAL: _ClassVar[Verdict]
    VERDICT_INSUFFICIENT_DATA: _ClassVar[Verdict]
VERDICT_UNSPECIFIED: Verdict
VERDICT_OK: Verdict
VERDICT_WARNING: Verdict
VERDICT_CRITICAL: Verdict
VERDICT_INSUFFICIENT_DATA: Verdict

class StatisticValue(_message.Message):
    __slots__ = ("value", "p_value", "warning_threshold", "critical_threshold", "verdict", "sample_size", "baseline_sample_size", "effect_size")
    VALUE_FIELD_NUMBER: _ClassVar[int]
    P_VALUE_FIELD_NUMBER: _ClassVar[int]
    WARNING_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    EFFECT_SIZE_FIELD_NUMBER: _ClassVar[int]
    value: float
    p_value: float
    warning_threshold: float
    critical_threshold: float
    verdict: Verdict
    sample_size: int
    baseline_sample_size: int
    effect_size: float
    def __init__(self, value: _Optional[float] = ..., p_value: _Optional[float] = ..., warning_threshold: _Optional[float] = ..., critical_threshold: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., sample_size: _Optional[int] = ..., baseline_sample_size: _Optional[int] = ..., effect_size: _Optional[float] = ...) -> None: ...

class NumericFeatureDrift(_message.Message):
    __slots__ = ("feature", "sample_count", "baseline_sample_count", "psi", "kl", "js", "ks", "w1", "w1_relative", "nan_rate", "out_of_range_rate", "outlier_rate", "mean", "std", "baseline_mean", "baseline_std", "bucket_counts", "verdict", "reasons")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    KL_FIELD_NUMBER: _ClassVar[int]
    JS_FIELD_NUMBER: _ClassVar[int]
    KS_FIELD_NUMBER: _ClassVar[int]
    W1_FIELD_NUMBER: _ClassVar[int]
    W1_RELATIVE_FIELD_NUMBER: _ClassVar[int]
    NAN_RATE_FIELD_NUMBER: _ClassVar[int]
    OUT_OF_RANGE_RATE_FIELD_NUMBER: _ClassVar[int]
    OUTLIER_RATE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    BASELINE_MEAN_FIELD_NUMBER: _ClassVar[int]
    BASELINE_STD_FIELD_NUMBER: _ClassVar[int]
    BUCKET_COUNTS_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
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
    bucket_counts: _containers.RepeatedScalarFieldContainer[int]
    verdict: Verdict
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature: _Optional[str] = ..., sample_count: _Optional[int] = ..., baseline_sample_count: _Optional[int] = ..., psi: _Optional[_Union[StatisticValue, _Mapping]] = ..., kl: _Optional[_Union[StatisticValue, _Mapping]] = ..., js: _Optional[_Union[StatisticValue, _Mapping]] = ..., ks: _Optional[_Union[StatisticValue, _Mapping]] = ..., w1: _Optional[_Union[StatisticValue, _Mapping]] = ..., w1_relative: _Optional[float] = ..., nan_rate: _Optional[_Union[StatisticValue, _Mapping]] = ..., out_of_range_rate: _Optional[_Union[StatisticValue, _Mapping]] = ..., outlier_rate: _Optional[_Union[StatisticValue, _Mapping]] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ..., baseline_mean: _Optional[float] = ..., baseline_std: _Optional[float] = ..., bucket_counts: _Optional[_Iterable[int]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class CategoryShare(_message.Message):
    __slots__ = ("code", "category", "share", "baseline_share")
    CODE_FIELD_NUMBER: _ClassVar[int]
    CATEGORY_FIELD_NUMBER: _ClassVar[int]
    SHARE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SHARE_FIELD_NUMBER: _ClassVar[int]
    code: int
    category: str
    share: float
    baseline_share: float
    def __init__(self, code: _Optional[int] = ..., category: _Optional[str] = ..., share: _Optional[float] = ..., baseline_share: _Optional[float] = ...) -> None: ...

class CategoricalFeatureDrift(_message.Message):
    __slots__ = ("feature", "sample_count", "baseline_sample_count", "chi2", "psi", "js", "unseen_rate", "missing_rate", "shares", "verdict", "reasons")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    CHI2_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    JS_FIELD_NUMBER: _ClassVar[int]
    UNSEEN_RATE_FIELD_NUMBER: _ClassVar[int]
    MISSING_RATE_FIELD_NUMBER: _ClassVar[int]
    SHARES_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    feature: str
    sample_count: int
    baseline_sample_count: int
    chi2: StatisticValue
    psi: StatisticValue
    js: StatisticValue
    unseen_rate: StatisticValue
    missing_rate: StatisticValue
    shares: _containers.RepeatedCompositeFieldContainer[CategoryShare]
    verdict: Verdict
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, feature: _Optional[str] = ..., sample_count: _Optional[int] = ..., baseline_sample_count: _Optional[int] = ..., chi2: _Optional[_Union[StatisticValue, _Mapping]] = ..., psi: _Optional[_Union[StatisticValue, _Mapping]] = ..., js: _Optional[_Union[StatisticValue, _Mapping]] = ..., unseen_rate: _Optional[_Union[StatisticValue, _Mapping]] = ..., missing_rate: _Optional[_Union[StatisticValue, _Mapping]] = ..., shares: _Optional[_Iterable[_Union[CategoryShare, _Mapping]]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbeddingDrift(_message.Message):
    __slots__ = ("block", "sample_count", "baseline_sample_count", "mmd2_unbiased", "mmd2_biased", "bandwidths", "nonfinite_rows", "permutations", "centroid_cosine_distance", "verdict", "reasons")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    MMD2_UNBIASED_FIELD_NUMBER: _ClassVar[int]
    MMD2_BIASED_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTHS_FIELD_NUMBER: _ClassVar[int]
    NONFINITE_ROWS_FIELD_NUMBER: _ClassVar[int]
    PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    CENTROID_COSINE_DISTANCE_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    block: str
    sample_count: int
    baseline_sample_count: int
    mmd2_unbiased: StatisticValue
    mmd2_biased: float
    bandwidths: _containers.RepeatedScalarFieldContainer[float]
    nonfinite_rows: int
    permutations: int
    centroid_cosine_distance: StatisticValue
    verdict: Verdict
    reasons: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, block: _Optional[str] = ..., sample_count: _Optional[int] = ..., baseline_sample_count: _Optional[int] = ..., mmd2_unbiased: _Optional[_Union[StatisticValue, _Mapping]] = ..., mmd2_biased: _Optional[float] = ..., bandwidths: _Optional[_Iterable[float]] = ..., nonfinite_rows: _Optional[int] = ..., permutations: _Optional[int] = ..., centroid_cosine_distance: _Optional[_Union[StatisticValue, _Mapping]] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reasons: _Optional[_Iterable[str]] = ...) -> None: ...

class ScoreDrift(_message.Message):
    __slots__ = ("output", "sample_count", "baseline_sample_count", "psi", "ks", "js", "positive_rate", "baseline_positive_rate", "mean", "baseline_mean", "verdict", "reasons", "positive_rate_delta")
    OUTPUT_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    PSI_FIELD_NUMBER: _ClassVar[int]
    KS_FIELD_NUMBER: _ClassVar[int]
    JS_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_RATE_FIELD_NUMBER: _ClassVar[int]
    BASELINE_POSITIVE_RATE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    BASELINE_MEAN_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    REASONS_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_RATE_DELTA_FIELD_NUMBER: _ClassVar[int]
    output: str
    sample_count: int
    baseline_sample_count: int
    psi: StatisticValue
    ks: StatisticValue
    js: StatisticValue
    positive_rate: float
    baseline_positive_rate: float
    mean: float
    baseline_mean: float
    verdict: Verdict
    reasons: _containers.RepeatedScalarFieldContainer[str]
    positive_rate_delta: StatisticValue
    def __init__(self, output: _Optional[str] = ..., sample_count: _Optional[int] = ..., baseline_sample_count: _Optional[int] = ..., psi: _Optional[_Union[StatisticValue, _Mapping]] = ..., ks: _Optional[_Union[StatisticValue, _Mapping]] = ..., js: _Optional[_Union[StatisticValue, _Mapping]] = ..., positive_rate: _Optional[float] = ..., baseline_positive_rate: _Optional[float] = ..., mean: _Optional[float] = ..., baseline_mean: _Optional[float] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., reasons: _Optional[_Iterable[str]] = ..., positive_rate_delta: _Optional[_Union[StatisticValue, _Mapping]] = ...) -> None: ...

class LatencyStats(_message.Message):
    __slots__ = ("sample_count", "p50_ms", "p95_ms", "p99_ms", "relative_error", "error_count", "error_rate", "status_count")
    SAMPLE_COUNT_FIELD_NUMBER: _ClassVar[int]
    P50_MS_FIELD_NUMBER: _ClassVar[int]
    P95_MS_FIELD_NUMBER: _ClassVar[int]
    P99_MS_FIELD_NUMBER: _ClassVar[int]
    RELATIVE_ERROR_FIELD_NUMBER: _ClassVar[int]
    ERROR_COUNT_FIELD_NUMBER: _ClassVar[int]
    ERROR_RATE_FIELD_NUMBER: _ClassVar[int]
    STATUS_COUNT_FIELD_NUMBER: _ClassVar[int]
    sample_count: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    relative_error: float
    error_count: int
    error_rate: float
    status_count: int
    def __init__(self, sample_count: _Optional[int] = ..., p50_ms: _Optional[float] = ..., p95_ms: _Optional[float] = ..., p99_ms: _Optional[float] = ..., relative_error: _Optional[float] = ..., error_count: _Optional[int] = ..., error_rate: _Optional[float] = ..., status_count: _Optional[int] = ...) -> None: ...

class LabelQuality(_message.Message):
    __slots__ = ("labelled_count", "accuracy", "precision", "recall", "f1", "auroc", "brier", "ece", "label_delay_p50_s", "label_delay_max_s", "cusum_error", "page_hinkley", "concept_drift_detected", "cusum_threshold", "page_hinkley_threshold")
    LABELLED_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACCURACY_FIELD_NUMBER: _ClassVar[int]
    PRECISION_FIELD_NUMBER: _ClassVar[int]
    RECALL_FIELD_NUMBER: _ClassVar[int]
    F1_FIELD_NUMBER: _ClassVar[int]
    AUROC_FIELD_NUMBER: _ClassVar[int]
    BRIER_FIELD_NUMBER: _ClassVar[int]
    ECE_FIELD_NUMBER: _ClassVar[int]
    LABEL_DELAY_P50_S_FIELD_NUMBER: _ClassVar[int]
    LABEL_DELAY_MAX_S_FIELD_NUMBER: _ClassVar[int]
    CUSUM_ERROR_FIELD_NUMBER: _ClassVar[int]
    PAGE_HINKLEY_FIELD_NUMBER: _ClassVar[int]
    CONCEPT_DRIFT_DETECTED_FIELD_NUMBER: _ClassVar[int]
    CUSUM_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    PAGE_HINKLEY_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
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
    page_hinkley: float
    concept_drift_detected: bool
    cusum_threshold: float
    page_hinkley_threshold: float
    def __init__(self, labelled_count: _Optional[int] = ..., accuracy: _Optional[float] = ..., precision: _Optional[float] = ..., recall: _Optional[float] = ..., f1: _Optional[float] = ..., auroc: _Optional[float] = ..., brier: _Optional[float] = ..., ece: _Optional[float] = ..., label_delay_p50_s: _Optional[float] = ..., label_delay_max_s: _Optional[float] = ..., cusum_error: _Optional[float] = ..., page_hinkley: _Optional[float] = ..., concept_drift_detected: _Optional[bool] = ..., cusum_threshold: _Optional[float] = ..., page_hinkley_threshold: _Optional[float] = ...) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ("name", "baseline", "window_start", "window_end", "evaluate_time", "row_count", "numeric_features", "categorical_features", "embedding_blocks", "score_outputs", "latency", "label_quality", "drifted_features", "verdict", "verdict_reasons", "baseline_data_hash")
    NAME_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    WINDOW_START_FIELD_NUMBER: _ClassVar[int]
    WINDOW_END_FIELD_NUMBER: _ClassVar[int]
    EVALUATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_FEATURES_FIELD_NUMBER: _ClassVar[int]
    CATEGORICAL_FEATURES_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    SCORE_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    LATENCY_FIELD_NUMBER: _ClassVar[int]
    LABEL_QUALITY_FIELD_NUMBER: _ClassVar[int]
    DRIFTED_FEATURES_FIELD_NUMBER: _ClassVar[int]
    VERDICT_FIELD_NUMBER: _ClassVar[int]
    VERDICT_REASONS_FIELD_NUMBER: _ClassVar[int]
    BASELINE_DATA_HASH_FIELD_NUMBER: _ClassVar[int]
    name: str
    baseline: str
    window_start: _timestamp_pb2.Timestamp
    window_end: _timestamp_pb2.Timestamp
    evaluate_time: _timestamp_pb2.Timestamp
    row_count: int
    numeric_features: _containers.RepeatedCompositeFieldContainer[NumericFeatureDrift]
    categorical_features: _containers.RepeatedCompositeFieldContainer[CategoricalFeatureDrift]
    embedding_blocks: _containers.RepeatedCompositeFieldContainer[EmbeddingDrift]
    score_outputs: _containers.RepeatedCompositeFieldContainer[ScoreDrift]
    latency: LatencyStats
    label_quality: LabelQuality
    drifted_features: int
    verdict: Verdict
    verdict_reasons: _containers.RepeatedScalarFieldContainer[str]
    baseline_data_hash: str
    def __init__(self, name: _Optional[str] = ..., baseline: _Optional[str] = ..., window_start: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., window_end: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., evaluate_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., row_count: _Optional[int] = ..., numeric_features: _Optional[_Iterable[_Union[NumericFeatureDrift, _Mapping]]] = ..., categorical_features: _Optional[_Iterable[_Union[CategoricalFeatureDrift, _Mapping]]] = ..., embedding_blocks: _Optional[_Iterable[_Union[EmbeddingDrift, _Mapping]]] = ..., score_outputs: _Optional[_Iterable[_Union[ScoreDrift, _Mapping]]] = ..., latency: _Optional[_Union[LatencyStats, _Mapping]] = ..., label_quality: _Optional[_Union[LabelQuality, _Mapping]] = ..., drifted_features: _Optional[int] = ..., verdict: _Optional[_Union[Verdict, str]] = ..., verdict_reasons: _Optional[_Iterable[str]] = ..., baseline_data_hash: _Optional[str] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ("name", "at_time")
    NAME_FIELD_NUMBER: _ClassVar[int]
    AT_TIME_FIELD_NUMBER: _ClassVar[int]
    name: str
    at_time: _timestamp_pb2.Timestamp
    def __init__(self, name: _Optional[str] = ..., at_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

class ListSnapshotsRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token", "start_time", "end_time")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    START_TIME_FIELD_NUMBER: _ClassVar[int]
    END_TIME_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    start_time: _timestamp_pb2.Timestamp
    end_time: _timestamp_pb2.Timestamp
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., start_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., end_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListSnapshotsResponse(_message.Message):
    __slots__ = ("snapshots", "next_page_token")
    SNAPSHOTS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    snapshots: _containers.RepeatedCompositeFieldContainer[Snapshot]
    next_page_token: str
    def __init__(self, snapshots: _Optional[_Iterable[_Union[Snapshot, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class WatchSnapshotsRequest(_message.Message):
    __slots__ = ("parent",)
    PARENT_FIELD_NUMBER: _ClassVar[int]
    parent: str
    def __init__(self, parent: _Optional[str] = ...) -> None: ...

class WatchSnapshotsResponse(_message.Message):
    __slots__ = ("snapshot",)
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ...) -> None: ...

import datetime

from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import field_mask_pb2 as _field_mask_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ScoreKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SCORE_KIND_UNSPECIFIED: _ClassVar[ScoreKind]
    SCORE_KIND_PROBABILITY: _ClassVar[ScoreKind]
    SCORE_KIND_REGRESSION: _ClassVar[ScoreKind]

class Statistic(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATISTIC_UNSPECIFIED: _ClassVar[Statistic]
    STATISTIC_PSI: _ClassVar[Statistic]
    STATISTIC_KL: _ClassVar[Statistic]
    STATISTIC_JS: _ClassVar[Statistic]
    STATISTIC_KS: _ClassVar[Statistic]
    STATISTIC_W1: _ClassVar[Statistic]
    STATISTIC_CHI2: _ClassVar[Statistic]
    STATISTIC_MMD: _ClassVar[Statistic]
    STATISTIC_DATA_QUALITY: _ClassVar[Statistic]
    STATISTIC_LATENCY: _ClassVar[Statistic]
    STATISTIC_LABEL_QUALITY: _ClassVar[Statistic]
    STATISTIC_CONCEPT_DRIFT: _ClassVar[Statistic]

class Severity(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SEVERITY_UNSPECIFIED: _ClassVar[Severity]
    SEVERITY_P1: _ClassVar[Severity]
    SEVERITY_P2: _ClassVar[Severity]
    SEVERITY_P3: _ClassVar[Severity]

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DIRECTION_UNSPECIFIED: _ClassVar[Direction]
    DIRECTION_ABOVE: _ClassVar[Direction]
    DIRECTION_BELOW: _ClassVar[Direction]

class CalibratedLevel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CALIBRATED_LEVEL_UNSPECIFIED: _ClassVar[CalibratedLevel]
    CALIBRATED_LEVEL_WARNING: _ClassVar[CalibratedLevel]
    CALIBRATED_LEVEL_CRITICAL: _ClassVar[CalibratedLevel]

class CompositeMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COMPOSITE_MODE_UNSPECIFIED: _ClassVar[CompositeMode]
    COMPOSITE_MODE_ALL: _ClassVar[CompositeMode]
    COMPOSITE_MODE_ANY: _ClassVar[CompositeMode]
    COMPOSITE_MODE_K_OF_N: _ClassVar[CompositeMode]
SCORE_KIND_UNSPECIFIED: ScoreKind
SCORE_KIND_PROBABILITY: ScoreKind
SCORE_KIND_REGRESSION: ScoreKind
STATISTIC_UNSPECIFIED: Statistic
STATISTIC_PSI: Statistic
STATISTIC_KL: Statistic
STATISTIC_JS: Statistic
STATISTIC_KS: Statistic
STATISTIC_W1: Statistic
STATISTIC_CHI2: Statistic
STATISTIC_MMD: Statistic
STATISTIC_DATA_QUALITY: Statistic
STATISTIC_LATENCY: Statistic
STATISTIC_LABEL_QUALITY: Statistic
STATISTIC_CONCEPT_DRIFT: Statistic
SEVERITY_UNSPECIFIED: Severity
SEVERITY_P1: Severity
SEVERITY_P2: Severity
SEVERITY_P3: Severity
DIRECTION_UNSPECIFIED: Direction
DIRECTION_ABOVE: Direction
DIRECTION_BELOW: Direction
CALIBRATED_LEVEL_UNSPECIFIED: CalibratedLevel
CALIBRATED_LEVEL_WARNING: CalibratedLevel
CALIBRATED_LEVEL_CRITICAL: CalibratedLevel
COMPOSITE_MODE_UNSPECIFIED: CompositeMode
COMPOSITE_MODE_ALL: CompositeMode
COMPOSITE_MODE_ANY: CompositeMode
COMPOSITE_MODE_K_OF_N: CompositeMode

class Monitor(_message.Message):
    __slots__ = ("name", "model_id", "model_version", "lane", "description", "labels", "schema", "window", "statistics", "rules", "active_baseline", "create_time", "update_time", "etag")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    LANE_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SCHEMA_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STATISTICS_FIELD_NUMBER: _ClassVar[int]
    RULES_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_BASELINE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    UPDATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ETAG_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_id: str
    model_version: str
    lane: str
    description: str
    labels: _containers.ScalarMap[str, str]
    schema: Schema
    window: WindowSpec
    statistics: StatisticsConfig
    rules: _containers.RepeatedCompositeFieldContainer[AlarmRule]
    active_baseline: str
    create_time: _timestamp_pb2.Timestamp
    update_time: _timestamp_pb2.Timestamp
    etag: str
    def __init__(self, name: _Optional[str] = ..., model_id: _Optional[str] = ..., model_version: _Optional[str] = ..., lane: _Optional[str] = ..., description: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., schema: _Optional[_Union[Schema, _Mapping]] = ..., window: _Optional[_Union[WindowSpec, _Mapping]] = ..., statistics: _Optional[_Union[StatisticsConfig, _Mapping]] = ..., rules: _Optional[_Iterable[_Union[AlarmRule, _Mapping]]] = ..., active_baseline: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., update_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., etag: _Optional[str] = ...) -> None: ...

class Schema(_message.Message):
    __slots__ = ("numeric_features", "categorical_features", "embedding_blocks", "score_outputs")
    NUMERIC_FEATURES_FIELD_NUMBER: _ClassVar[int]
    CATEGORICAL_FEATURES_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    SCORE_OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    numeric_features: _containers.RepeatedCompositeFieldContainer[NumericFeature]
    categorical_features: _containers.RepeatedCompositeFieldContainer[CategoricalFeature]
    embedding_blocks: _containers.RepeatedCompositeFieldContainer[EmbeddingBlock]
    score_outputs: _containers.RepeatedCompositeFieldContainer[ScoreOutput]
    def __init__(self, numeric_features: _Optional[_Iterable[_Union[NumericFeature, _Mapping]]] = ..., categorical_features: _Optional[_Iterable[_Union[CategoricalFeature, _Mapping]]] = ..., embedding_blocks: _Optional[_Iterable[_Union[EmbeddingBlock, _Mapping]]] = ..., score_outputs: _Optional[_Iterable[_Union[ScoreOutput, _Mapping]]] = ...) -> None: ...

class NumericFeature(_message.Message):
    __slots__ = ("name", "valid_min", "valid_max")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VALID_MIN_FIELD_NUMBER: _ClassVar[int]
    VALID_MAX_FIELD_NUMBER: _ClassVar[int]
    name: str
    valid_min: float
    valid_max: float
    def __init__(self, name: _Optional[str] = ..., valid_min: _Optional[float] = ..., valid_max: _Optional[float] = ...) -> None: ...

class CategoricalFeature(_message.Message):
    __slots__ = ("name", "categories")
    NAME_FIELD_NUMBER: _ClassVar[int]
    CATEGORIES_FIELD_NUMBER: _ClassVar[int]
    name: str
    categories: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, name: _Optional[str] = ..., categories: _Optional[_Iterable[str]] = ...) -> None: ...

class EmbeddingBlock(_message.Message):
    __slots__ = ("name", "dim")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DIM_FIELD_NUMBER: _ClassVar[int]
    name: str
    dim: int
    def __init__(self, name: _Optional[str] = ..., dim: _Optional[int] = ...) -> None: ...

class ScoreOutput(_message.Message):
    __slots__ = ("name", "kind", "positive_threshold")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    POSITIVE_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: ScoreKind
    positive_threshold: float
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[_Union[ScoreKind, str]] = ..., positive_threshold: _Optional[float] = ...) -> None: ...

class WindowSpec(_message.Message):
    __slots__ = ("pane_duration", "pane_count", "evaluation_interval")
    PANE_DURATION_FIELD_NUMBER: _ClassVar[int]
    PANE_COUNT_FIELD_NUMBER: _ClassVar[int]
    EVALUATION_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    pane_duration: _duration_pb2.Duration
    pane_count: int
    evaluation_interval: _duration_pb2.Duration
    def __init__(self, pane_duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., pane_count: _Optional[int] = ..., evaluation_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class StatisticsConfig(_message.Message):
    __slots__ = ("enabled", "numeric_bins", "reservoir_size", "embedding_sample_size", "mmd_permutations", "mmd_bandwidth_multipliers", "label_ttl")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_BINS_FIELD_NUMBER: _ClassVar[int]
    RESERVOIR_SIZE_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    MMD_PERMUTATIONS_FIELD_NUMBER: _ClassVar[int]
    MMD_BANDWIDTH_MULTIPLIERS_FIELD_NUMBER: _ClassVar[int]
    LABEL_TTL_FIELD_NUMBER: _ClassVar[int]
    enabled: _containers.RepeatedScalarFieldContainer[Statistic]
    numeric_bins: int
    reservoir_size: int
    embedding_sample_size: int
    mmd_permutations: int
    mmd_bandwidth_multipliers: _containers.RepeatedScalarFieldContainer[float]
    label_ttl: _duration_pb2.Duration
    def __init__(self, enabled: _Optional[_Iterable[_Union[Statistic, str]]] = ..., numeric_bins: _Optional[int] = ..., reservoir_size: _Optional[int] = ..., embedding_sample_size: _Optional[int] = ..., mmd_permutations: _Optional[int] = ..., mmd_bandwidth_multipliers: _Optional[_Iterable[float]] = ..., label_ttl: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class MetricCondition(_message.Message):
    __slots__ = ("selector", "direction", "fixed_threshold", "calibrated_threshold", "max_p_value")
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FIXED_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    CALIBRATED_THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    MAX_P_VALUE_FIELD_NUMBER: _ClassVar[int]
    selector: str
    direction: Direction
    fixed_threshold: float
    calibrated_threshold: CalibratedLevel
    max_p_value: float
    def __init__(self, selector: _Optional[str] = ..., direction: _Optional[_Union[Direction, str]] = ..., fixed_threshold: _Optional[float] = ..., calibrated_threshold: _Optional[_Union[CalibratedLevel, str]] = ..., max_p_value: _Optional[float] = ...) -> None: ...

class CompositeCondition(_message.Message):
    __slots__ = ("mode", "rule_ids", "k")
    MODE_FIELD_NUMBER: _ClassVar[int]
    RULE_IDS_FIELD_NUMBER: _ClassVar[int]
    K_FIELD_NUMBER: _ClassVar[int]
    mode: CompositeMode
    rule_ids: _containers.RepeatedScalarFieldContainer[str]
    k: int
    def __init__(self, mode: _Optional[_Union[CompositeMode, str]] = ..., rule_ids: _Optional[_Iterable[str]] = ..., k: _Optional[int] = ...) -> None: ...

class AlarmRule(_message.Message):
    __slots__ = ("rule_id", "metric", "composite", "min_samples", "for_evaluations", "cooldown", "keep_firing_for", "severity", "labels", "summary", "runbook")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    METRIC_FIELD_NUMBER: _ClassVar[int]
    COMPOSITE_FIELD_NUMBER: _ClassVar[int]
    MIN_SAMPLES_FIELD_NUMBER: _ClassVar[int]
    FOR_EVALUATIONS_FIELD_NUMBER: _ClassVar[int]
    COOLDOWN_FIELD_NUMBER: _ClassVar[int]
    KEEP_FIRING_FOR_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    rule_id: str
    metric: MetricCondition
    composite: CompositeCondition
    min_samples: int
    for_evaluations: int
    cooldown: _duration_pb2.Duration
    keep_firing_for: _duration_pb2.Duration
    severity: Severity
    labels: _containers.ScalarMap[str, str]
    summary: str
    runbook: str
    def __init__(self, rule_id: _Optional[str] = ..., metric: _Optional[_Union[MetricCondition, _Mapping]] = ..., composite: _Optional[_Union[CompositeCondition, _Mapping]] = ..., min_samples: _Optional[int] = ..., for_evaluations: _Optional[int] = ..., cooldown: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., keep_firing_for: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., severity: _Optional[_Union[Severity, str]] = ..., labels: _Optional[_Mapping[str, str]] = ..., summary: _Optional[str] = ..., runbook: _Optional[str] = ...) -> None: ...

class CreateMonitorRequest(_message.Message):
    __slots__ = ("monitor_id", "monitor")
    MONITOR_ID_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    monitor_id: str
    monitor: Monitor
    def __init__(self, monitor_id: _Optional[str] = ..., monitor: _Optional[_Union[Monitor, _Mapping]] = ...) -> None: ...

class CreateMonitorResponse(_message.Message):
    __slots__ = ("monitor",)
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    monitor: Monitor
    def __init__(self, monitor: _Optional[_Union[Monitor, _Mapping]] = ...) -> None: ...

class GetMonitorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetMonitorResponse(_message.Message):
    __slots__ = ("monitor",)
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    monitor: Monitor
    def __init__(self, monitor: _Optional[_Union[Monitor, _Mapping]] = ...) -> None: ...

class ListMonitorsRequest(_message.Message):
    __slots__ = ("page_size", "page_token")
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    page_size: int
    page_token: str
    def __init__(self, page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListMonitorsResponse(_message.Message):
    __slots__ = ("monitors", "next_page_token", "total_size")
    MONITORS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    TOTAL_SIZE_FIELD_NUMBER: _ClassVar[int]
    monitors: _containers.RepeatedCompositeFieldContainer[Monitor]
    next_page_token: str
    total_size: int
    def __init__(self, monitors: _Optional[_Iterable[_Union[Monitor, _Mapping]]] = ..., next_page_token: _Optional[str] = ..., total_size: _Optional[int] = ...) -> None: ...

class UpdateMonitorRequest(_message.Message):
    __slots__ = ("monitor", "update_mask")
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    UPDATE_MASK_FIELD_NUMBER: _ClassVar[int]
    monitor: Monitor
    update_mask: _field_mask_pb2.FieldMask
    def __init__(self, monitor: _Optional[_Union[Monitor, _Mapping]] = ..., update_mask: _Optional[_Union[_field_mask_pb2.FieldMask, _Mapping]] = ...) -> None: ...

class UpdateMonitorResponse(_message.Message):
    __slots__ = ("monitor",)
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    monitor: Monitor
    def __init__(self, monitor: _Optional[_Union[Monitor, _Mapping]] = ...) -> None: ...

class DeleteMonitorRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteMonitorResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

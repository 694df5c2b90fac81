import datetime

from driftd.v1 import ingest_pb2 as _ingest_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Baseline(_message.Message):
    __slots__ = ("name", "model_id", "data_hash", "git_commit", "source", "create_time", "row_count", "active", "format_version", "numeric_features", "categorical_features", "embedding_blocks", "thresholds")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    DATA_HASH_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    CREATE_TIME_FIELD_NUMBER: _ClassVar[int]
    ROW_COUNT_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    FORMAT_VERSION_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_FEATURES_FIELD_NUMBER: _ClassVar[int]
    CATEGORICAL_FEATURES_FIELD_NUMBER: _ClassVar[int]
    EMBEDDING_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    THRESHOLDS_FIELD_NUMBER: _ClassVar[int]
    name: str
    model_id: str
    data_hash: str
    git_commit: str
    source: str
    create_time: _timestamp_pb2.Timestamp
    row_count: int
    active: bool
    format_version: int
    numeric_features: _containers.RepeatedCompositeFieldContainer[NumericReference]
    categorical_features: _containers.RepeatedCompositeFieldContainer[CategoricalReference]
    embedding_blocks: _containers.RepeatedCompositeFieldContainer[EmbeddingReference]
    thresholds: _containers.RepeatedCompositeFieldContainer[CalibratedThreshold]
    def __init__(self, name: _Optional[str] = ..., model_id: _Optional[str] = ..., data_hash: _Optional[str] = ..., git_commit: _Optional[str] = ..., source: _Optional[str] = ..., create_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., row_count: _Optional[int] = ..., active: _Optional[bool] = ..., format_version: _Optional[int] = ..., numeric_features: _Optional[_Iterable[_Union[NumericReference, _Mapping]]] = ..., categorical_features: _Optional[_Iterable[_Union[CategoricalReference, _Mapping]]] = ..., embedding_blocks: _Optional[_Iterable[_Union[EmbeddingReference, _Mapping]]] = ..., thresholds: _Optional[_Iterable[_Union[CalibratedThreshold, _Mapping]]] = ...) -> None: ...

class NumericReference(_message.Message):
    __slots__ = ("feature", "edges", "bucket_counts", "nan_count", "mean", "std")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    EDGES_FIELD_NUMBER: _ClassVar[int]
    BUCKET_COUNTS_FIELD_NUMBER: _ClassVar[int]
    NAN_COUNT_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    feature: str
    edges: _containers.RepeatedScalarFieldContainer[float]
    bucket_counts: _containers.RepeatedScalarFieldContainer[int]
    nan_count: int
    mean: float
    std: float
    def __init__(self, feature: _Optional[str] = ..., edges: _Optional[_Iterable[float]] = ..., bucket_counts: _Optional[_Iterable[int]] = ..., nan_count: _Optional[int] = ..., mean: _Optional[float] = ..., std: _Optional[float] = ...) -> None: ...

class CategoricalReference(_message.Message):
    __slots__ = ("feature", "codes", "counts")
    FEATURE_FIELD_NUMBER: _ClassVar[int]
    CODES_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    feature: str
    codes: _containers.RepeatedScalarFieldContainer[int]
    counts: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, feature: _Optional[str] = ..., codes: _Optional[_Iterable[int]] = ..., counts: _Optional[_Iterable[int]] = ...) -> None: ...

class EmbeddingReference(_message.Message):
    __slots__ = ("block", "sample_size", "bandwidths")
    BLOCK_FIELD_NUMBER: _ClassVar[int]
    SAMPLE_SIZE_FIELD_NUMBER: _ClassVar[int]
    BANDWIDTHS_FIELD_NUMBER: _ClassVar[int]
    block: str
    sample_size: int
    bandwidths: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, block: _Optional[str] = ..., sample_size: _Optional[int] = ..., bandwidths: _Optional[_Iterable[float]] = ...) -> None: ...

class CalibratedThreshold(_message.Message):
    __slots__ = ("statistic", "column", "warning", "critical", "shard_count")
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    COLUMN_FIELD_NUMBER: _ClassVar[int]
    WARNING_FIELD_NUMBER: _ClassVar[int]
    CRITICAL_FIELD_NUMBER: _ClassVar[int]
    SHARD_COUNT_FIELD_NUMBER: _ClassVar[int]
    statistic: str
    column: str
    warning: float
    critical: float
    shard_count: int
    def __init__(self, statistic: _Optional[str] = ..., column: _Optional[str] = ..., warning: _Optional[float] = ..., critical: _Optional[float] = ..., shard_count: _Optional[int] = ...) -> None: ...

class BaselineHeader(_message.Message):
    __slots__ = ("parent", "baseline_id", "model_id", "git_commit", "source", "activate", "seed")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    BASELINE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_ID_FIELD_NUMBER: _ClassVar[int]
    GIT_COMMIT_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ACTIVATE_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    parent: str
    baseline_id: str
    model_id: str
    git_commit: str
    source: str
    activate: bool
    seed: int
    def __init__(self, parent: _Optional[str] = ..., baseline_id: _Optional[str] = ..., model_id: _Optional[str] = ..., git_commit: _Optional[str] = ..., source: _Optional[str] = ..., activate: _Optional[bool] = ..., seed: _Optional[int] = ...) -> None: ...

class CreateBaselineRequest(_message.Message):
    __slots__ = ("header", "batch")
    HEADER_FIELD_NUMBER: _ClassVar[int]
    BATCH_FIELD_NUMBER: _ClassVar[int]
    header: BaselineHeader
    batch: _ingest_pb2.Batch
    def __init__(self, header: _Optional[_Union[BaselineHeader, _Mapping]] = ..., batch: _Optional[_Union[_ingest_pb2.Batch, _Mapping]] = ...) -> None: ...

class CreateBaselineResponse(_message.Message):
    __slots__ = ("baseline",)
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    baseline: Baseline
    def __init__(self, baseline: _Optional[_Union[Baseline, _Mapping]] = ...) -> None: ...

class GetBaselineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class GetBaselineResponse(_message.Message):
    __slots__ = ("baseline",)
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    baseline: Baseline
    def __init__(self, baseline: _Optional[_Union[Baseline, _Mapping]] = ...) -> None: ...

class ListBaselinesRequest(_message.Message):
    __slots__ = ("parent", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListBaselinesResponse(_message.Message):
    __slots__ = ("baselines", "next_page_token")
    BASELINES_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    baselines: _containers.RepeatedCompositeFieldContainer[Baseline]
    next_page_token: str
    def __init__(self, baselines: _Optional[_Iterable[_Union[Baseline, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ActivateBaselineRequest(_message.Message):
    __slots__ = ("name",)
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class ActivateBaselineResponse(_message.Message):
    __slots__ = ("baseline",)
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    baseline: Baseline
    def __init__(self, baseline: _Optional[_Union[Baseline, _Mapping]] = ...) -> None: ...

import datetime

from driftd.v1 import tensor_pb2 as _tensor_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.rpc import status_pb2 as _status_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Batch(_message.Message):
    __slots__ = ("monitor", "producer_id", "sequence", "numeric", "categorical", "embeddings", "scores", "latency_ms", "status_codes", "request_ids", "event_time")
    class EmbeddingsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: _tensor_pb2.Tensor
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ...) -> None: ...
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    NUMERIC_FIELD_NUMBER: _ClassVar[int]
    CATEGORICAL_FIELD_NUMBER: _ClassVar[int]
    EMBEDDINGS_FIELD_NUMBER: _ClassVar[int]
    SCORES_FIELD_NUMBER: _ClassVar[int]
    LATENCY_MS_FIELD_NUMBER: _ClassVar[int]
    STATUS_CODES_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    monitor: str
    producer_id: str
    sequence: int
    numeric: _tensor_pb2.Tensor
    categorical: _tensor_pb2.Tensor
    embeddings: _containers.MessageMap[str, _tensor_pb2.Tensor]
    scores: _tensor_pb2.Tensor
    latency_ms: _tensor_pb2.Tensor
    status_codes: _tensor_pb2.Tensor
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    event_time: _timestamp_pb2.Timestamp
    def __init__(self, monitor: _Optional[str] = ..., producer_id: _Optional[str] = ..., sequence: _Optional[int] = ..., numeric: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., categorical: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., embeddings: _Optional[_Mapping[str, _tensor_pb2.Tensor]] = ..., scores: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., latency_ms: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., status_codes: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., request_ids: _Optional[_Iterable[str]] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class BatchAck(_message.Message):
    __slots__ = ("producer_id", "sequence", "accepted_rows", "rejected_rows", "status", "duplicate")
    PRODUCER_ID_FIELD_NUMBER: _ClassVar[int]
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ACCEPTED_ROWS_FIELD_NUMBER: _ClassVar[int]
    REJECTED_ROWS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    producer_id: str
    sequence: int
    accepted_rows: int
    rejected_rows: int
    status: _status_pb2.Status
    duplicate: bool
    def __init__(self, producer_id: _Optional[str] = ..., sequence: _Optional[int] = ..., accepted_rows: _Optional[int] = ..., rejected_rows: _Optional[int] = ..., status: _Optional[_Union[_status_pb2.Status, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class StreamBatchesRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: Batch
    def __init__(self, batch: _Optional[_Union[Batch, _Mapping]] = ...) -> None: ...

class StreamBatchesResponse(_message.Message):
    __slots__ = ("ack",)
    ACK_FIELD_NUMBER: _ClassVar[int]
    ack: BatchAck
    def __init__(self, ack: _Optional[_Union[BatchAck, _Mapping]] = ...) -> None: ...

class WriteBatchRequest(_message.Message):
    __slots__ = ("batch",)
    BATCH_FIELD_NUMBER: _ClassVar[int]
    batch: Batch
    def __init__(self, batch: _Optional[_Union[Batch, _Mapping]] = ...) -> None: ...

class WriteBatchResponse(_message.Message):
    __slots__ = ("ack",)
    ACK_FIELD_NUMBER: _ClassVar[int]
    ack: BatchAck
    def __init__(self, ack: _Optional[_Union[BatchAck, _Mapping]] = ...) -> None: ...

class WriteLabelsRequest(_message.Message):
    __slots__ = ("monitor", "request_ids", "labels", "label_time")
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    REQUEST_IDS_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LABEL_TIME_FIELD_NUMBER: _ClassVar[int]
    monitor: str
    request_ids: _containers.RepeatedScalarFieldContainer[str]
    labels: _tensor_pb2.Tensor
    label_time: _timestamp_pb2.Timestamp
    def __init__(self, monitor: _Optional[str] = ..., request_ids: _Optional[_Iterable[str]] = ..., labels: _Optional[_Union[_tensor_pb2.Tensor, _Mapping]] = ..., label_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class WriteLabelsResponse(_message.Message):
    __slots__ = ("matched", "unmatched", "duplicates")
    MATCHED_FIELD_NUMBER: _ClassVar[int]
    UNMATCHED_FIELD_NUMBER: _ClassVar[int]
    DUPLICATES_FIELD_NUMBER: _ClassVar[int]
    matched: int
    unmatched: int
    duplicates: int
    def __init__(self, matched: _Optional[int] = ..., unmatched: _Optional[int] = ..., duplicates: _Optional[int] = ...) -> None: ...

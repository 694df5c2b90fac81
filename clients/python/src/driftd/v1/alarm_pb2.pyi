import datetime

from driftd.v1 import monitor_pb2 as _monitor_pb2
from google.protobuf import duration_pb2 as _duration_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class AlarmState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALARM_STATE_UNSPECIFIED: _ClassVar[AlarmState]
    ALARM_STATE_INACTIVE: _ClassVar[AlarmState]
    ALARM_STATE_PENDING: _ClassVar[AlarmState]
    ALARM_STATE_FIRING: _ClassVar[AlarmState]
    ALARM_STATE_RESOLVED: _ClassVar[AlarmState]
    ALARM_STATE_NO_DATA: _ClassVar[AlarmState]

class AlarmEventKind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ALARM_EVENT_KIND_UNSPECIFIED: _ClassVar[AlarmEventKind]
    ALARM_EVENT_KIND_TRANSITION: _ClassVar[AlarmEventKind]
    ALARM_EVENT_KIND_SILENCED: _ClassVar[AlarmEventKind]
    ALARM_EVENT_KIND_UNSILENCED: _ClassVar[AlarmEventKind]
    ALARM_EVENT_KIND_ACKNOWLEDGED: _ClassVar[AlarmEventKind]
ALARM_STATE_UNSPECIFIED: AlarmState
ALARM_STATE_INACTIVE: AlarmState
ALARM_STATE_PENDING: AlarmState
ALARM_STATE_FIRING: AlarmState
ALARM_STATE_RESOLVED: AlarmState
ALARM_STATE_NO_DATA: AlarmState
ALARM_EVENT_KIND_UNSPECIFIED: AlarmEventKind
ALARM_EVENT_KIND_TRANSITION: AlarmEventKind
ALARM_EVENT_KIND_SILENCED: AlarmEventKind
ALARM_EVENT_KIND_UNSILENCED: AlarmEventKind
ALARM_EVENT_KIND_ACKNOWLEDGED: AlarmEventKind

class AlarmEvent(_message.Message):
    __slots__ = ("sequence", "alarm", "monitor", "rule_id", "labels", "kind", "previous_state", "state", "severity", "value", "threshold", "summary", "runbook", "baseline", "snapshot", "event_time", "actor", "note")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    ALARM_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    PREVIOUS_STATE_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    BASELINE_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    EVENT_TIME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    sequence: int
    alarm: str
    monitor: str
    rule_id: str
    labels: _containers.ScalarMap[str, str]
    kind: AlarmEventKind
    previous_state: AlarmState
    state: AlarmState
    severity: _monitor_pb2.Severity
    value: float
    threshold: float
    summary: str
    runbook: str
    baseline: str
    snapshot: str
    event_time: _timestamp_pb2.Timestamp
    actor: str
    note: str
    def __init__(self, sequence: _Optional[int] = ..., alarm: _Optional[str] = ..., monitor: _Optional[str] = ..., rule_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., kind: _Optional[_Union[AlarmEventKind, str]] = ..., previous_state: _Optional[_Union[AlarmState, str]] = ..., state: _Optional[_Union[AlarmState, str]] = ..., severity: _Optional[_Union[_monitor_pb2.Severity, str]] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., summary: _Optional[str] = ..., runbook: _Optional[str] = ..., baseline: _Optional[str] = ..., snapshot: _Optional[str] = ..., event_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ("high_water_sequence", "time")
    HIGH_WATER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    high_water_sequence: int
    time: _timestamp_pb2.Timestamp
    def __init__(self, high_water_sequence: _Optional[int] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubscribeAlarmsRequest(_message.Message):
    __slots__ = ("monitors", "severities", "labels", "start_after_sequence", "heartbeat_interval")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    MONITORS_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    START_AFTER_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_INTERVAL_FIELD_NUMBER: _ClassVar[int]
    monitors: _containers.RepeatedScalarFieldContainer[str]
    severities: _containers.RepeatedScalarFieldContainer[_monitor_pb2.Severity]
    labels: _containers.ScalarMap[str, str]
    start_after_sequence: int
    heartbeat_interval: _duration_pb2.Duration
    def __init__(self, monitors: _Optional[_Iterable[str]] = ..., severities: _Optional[_Iterable[_Union[_monitor_pb2.Severity, str]]] = ..., labels: _Optional[_Mapping[str, str]] = ..., start_after_sequence: _Optional[int] = ..., heartbeat_interval: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ...) -> None: ...

class SubscribeAlarmsResponse(_message.Message):
    __slots__ = ("event", "heartbeat")
    EVENT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    event: AlarmEvent
    heartbeat: Heartbeat
    def __init__(self, event: _Optional[_Union[AlarmEvent, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ...) -> None: ...

class Alarm(_message.Message):
    __slots__ = ("name", "monitor", "rule_id", "labels", "state", "severity", "state_since", "value", "threshold", "summary", "runbook", "silenced_until", "acknowledged", "last_event_sequence")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    MONITOR_FIELD_NUMBER: _ClassVar[int]
    RULE_ID_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    SEVERITY_FIELD_NUMBER: _ClassVar[int]
    STATE_SINCE_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    SUMMARY_FIELD_NUMBER: _ClassVar[int]
    RUNBOOK_FIELD_NUMBER: _ClassVar[int]
    SILENCED_UNTIL_FIELD_NUMBER: _ClassVar[int]
    ACKNOWLEDGED_FIELD_NUMBER: _ClassVar[int]
    LAST_EVENT_SEQUENCE_FIELD_NUMBER: _ClassVar[int]
    name: str
    monitor: str
    rule_id: str
    labels: _containers.ScalarMap[str, str]
    state: AlarmState
    severity: _monitor_pb2.Severity
    state_since: _timestamp_pb2.Timestamp
    value: float
    threshold: float
    summary: str
    runbook: str
    silenced_until: _timestamp_pb2.Timestamp
    acknowledged: bool
    last_event_sequence: int
    def __init__(self, name: _Optional[str] = ..., monitor: _Optional[str] = ..., rule_id: _Optional[str] = ..., labels: _Optional[_Mapping[str, str]] = ..., state: _Optional[_Union[AlarmState, str]] = ..., severity: _Optional[_Union[_monitor_pb2.Severity, str]] = ..., state_since: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., value: _Optional[float] = ..., threshold: _Optional[float] = ..., summary: _Optional[str] = ..., runbook: _Optional[str] = ..., silenced_until: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., acknowledged: _Optional[bool] = ..., last_event_sequence: _Optional[int] = ...) -> None: ...

class ListAlarmsRequest(_message.Message):
    __slots__ = ("parent", "states", "severities", "page_size", "page_token")
    PARENT_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    SEVERITIES_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    parent: str
    states: _containers.RepeatedScalarFieldContainer[AlarmState]
    severities: _containers.RepeatedScalarFieldContainer[_monitor_pb2.Severity]
    page_size: int
    page_token: str
    def __init__(self, parent: _Optional[str] = ..., states: _Optional[_Iterable[_Union[AlarmState, str]]] = ..., severities: _Optional[_Iterable[_Union[_monitor_pb2.Severity, str]]] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListAlarmsResponse(_message.Message):
    __slots__ = ("alarms", "next_page_token")
    ALARMS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    alarms: _containers.RepeatedCompositeFieldContainer[Alarm]
    next_page_token: str
    def __init__(self, alarms: _Optional[_Iterable[_Union[Alarm, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class SilenceAlarmRequest(_message.Message):
    __slots__ = ("name", "duration", "actor", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DURATION_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    duration: _duration_pb2.Duration
    actor: str
    note: str
    def __init__(self, name: _Optional[str] = ..., duration: _Optional[_Union[datetime.timedelta, _duration_pb2.Duration, _Mapping]] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class SilenceAlarmResponse(_message.Message):
    __slots__ = ("alarm",)
    ALARM_FIELD_NUMBER: _ClassVar[int]
    alarm: Alarm
    def __init__(self, alarm: _Optional[_Union[Alarm, _Mapping]] = ...) -> None: ...

class AcknowledgeAlarmRequest(_message.Message):
    __slots__ = ("name", "actor", "note")
    NAME_FIELD_NUMBER: _ClassVar[int]
    ACTOR_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    name: str
    actor: str
    note: str
    def __init__(self, name: _Optional[str] = ..., actor: _Optional[str] = ..., note: _Optional[str] = ...) -> None: ...

class AcknowledgeAlarmResponse(_message.Message):
    __slots__ = ("alarm",)
    ALARM_FIELD_NUMBER: _ClassVar[int]
    alarm: Alarm
    def __init__(self, alarm: _Optional[_Union[Alarm, _Mapping]] = ...) -> None: ...

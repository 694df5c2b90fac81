"""Resumable alarm subscriptions.

`subscribe_alarms` yields every alarm event exactly once, in sequence order, across disconnects and
server restarts: it remembers the last sequence it yielded and resubscribes with
`start_after_sequence`, so the server replays what was missed from its durable log. Heartbeats
are consumed silently (they only advance `Subscription.high_water`).

    >>> import grpc
    >>> from driftd.client.alarms import subscribe_alarms
    >>> channel = grpc.insecure_channel("127.0.0.1:50051")      # doctest: +SKIP
    >>> for event in subscribe_alarms(channel, start_after=0):   # doctest: +SKIP
    ...     print(event.sequence, event.rule_id, event.summary)
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from dataclasses import dataclass, field
from typing import AsyncIterator, Iterator

import grpc

from driftd.client._stream import responses
from driftd.v1 import alarm_pb2, alarm_pb2_grpc, monitor_pb2

# Retry these; anything else (bad filters, auth, expired cursor) is raised to the caller.
RETRYABLE = {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.RESOURCE_EXHAUSTED,
             grpc.StatusCode.ABORTED, grpc.StatusCode.INTERNAL, grpc.StatusCode.CANCELLED}
SEVERITIES = {"P1": monitor_pb2.SEVERITY_P1, "P2": monitor_pb2.SEVERITY_P2, "P3": monitor_pb2.SEVERITY_P3}


@dataclass
class Subscription:
    """Cursor state of one resumable subscription."""

    last_sequence: int | None = None
    high_water: int = 0
    reconnects: int = 0
    _backoff: float = field(default=0.1, repr=False)
    _heartbeat_seen: bool = field(default=False, repr=False)

    def request(self, monitors, severities, labels, heartbeat_s: float) -> alarm_pb2.SubscribeAlarmsRequest:
        req = alarm_pb2.SubscribeAlarmsRequest(
            monitors=[m if m.startswith("monitors/") else f"monitors/{m}" for m in monitors],
            severities=[SEVERITIES[s] if isinstance(s, str) else s for s in severities], labels=dict(labels))
        req.heartbeat_interval.FromMilliseconds(int(heartbeat_s * 1000))
        cursor = self.cursor
        if cursor is not None:
            req.start_after_sequence = cursor
        return req

    @property
    def cursor(self) -> int | None:
        """Where to resume: past the last event delivered and past the last heartbeat's high-water
        mark (which only covers events this subscription was offered), so a live-only subscription
        that saw no event yet still resumes without losing what happens while it is disconnected."""
        if self.last_sequence is None and not self._heartbeat_seen:
            return None
        return max(self.last_sequence or 0, self.high_water)

    def accept(self, response: alarm_pb2.SubscribeAlarmsResponse) -> alarm_pb2.AlarmEvent | None:
        self._backoff = 0.1
        if response.HasField("heartbeat"):
            self.high_water = max(self.high_water, response.heartbeat.high_water_sequence)
            self._heartbeat_seen = True
            return None
        event = response.event
        cursor = self.cursor
        if cursor is not None and event.sequence <= cursor:
            return None  # never yield a duplicate, whatever the server replays
        self.last_sequence = event.sequence
        self.high_water = max(self.high_water, event.sequence)
        return event

    def next_delay(self) -> float:
        self.reconnects += 1
        delay = self._backoff * (0.5 + random.random())
        self._backoff = min(self._backoff * 2, 10.0)
        return delay


def _as_list(x) -> list:
    return [] if x is None else [x] if isinstance(x, (str, int)) else list(x)


def silence_limit(heartbeat_s: float) -> float:
    """How long a subscription may hear nothing before it is treated as dead and reopened: the
    server sends a heartbeat whenever it sent nothing for `heartbeat_s`, so three missed beats (and
    a second for scheduling) mean the connection is gone without having said so (a half-open TCP
    connection, a proxy that dropped it)."""
    return 3 * heartbeat_s + 1.0


def subscribe_alarms(channel: grpc.Channel, *, start_after: int | None = None, monitor=None, severity=None,
                     labels: dict[str, str] | None = None, heartbeat_s: float = 5.0, metadata=None,
                     state: Subscription | None = None) -> Iterator[alarm_pb2.AlarmEvent]:
    """Blocking iterator of alarm events that reconnects and resumes by itself.

    `start_after=None` starts with live events only; `start_after=0` replays the whole retained log.
    A stream silent for `silence_limit(heartbeat_s)` is reopened. The stream is read in a thread of
    its own (see `_stream.py`): grpcio can leave a stream's iterator blocked after the call ended.
    """
    sub = state or Subscription(last_sequence=start_after)
    stub = alarm_pb2_grpc.AlarmServiceStub(channel)
    quiet_limit = silence_limit(heartbeat_s)
    while True:
        call = stub.SubscribeAlarms(sub.request(_as_list(monitor), _as_list(severity), labels or {}, heartbeat_s),
                                    metadata=metadata)
        try:
            with contextlib.closing(responses(call, name="driftd-alarms", silence_s=quiet_limit)) as stream:
                for response in stream:
                    event = sub.accept(response)
                    if event is not None:
                        yield event
        except grpc.RpcError as exc:  # a silent stream ends as CANCELLED: retried like a broken one
            if exc.code() not in RETRYABLE:
                raise
        time.sleep(sub.next_delay())


async def subscribe_alarms_async(channel: grpc.aio.Channel, *, start_after: int | None = None, monitor=None, severity=None,
                                 labels: dict[str, str] | None = None, heartbeat_s: float = 5.0, metadata=None,
                                 state: Subscription | None = None) -> AsyncIterator[alarm_pb2.AlarmEvent]:
    """asyncio variant of `subscribe_alarms` (grpc.aio channel); a stream silent for
    `silence_limit(heartbeat_s)` is reopened the same way."""
    sub = state or Subscription(last_sequence=start_after)
    stub = alarm_pb2_grpc.AlarmServiceStub(channel)
    quiet_limit = silence_limit(heartbeat_s)
    while True:
        call = stub.SubscribeAlarms(sub.request(_as_list(monitor), _as_list(severity), labels or {}, heartbeat_s),
                                    metadata=metadata)
        try:
            while True:
                try:
                    response = await asyncio.wait_for(call.read(), quiet_limit)
                except asyncio.TimeoutError:
                    break  # silent for too long: cancelled below and reopened
                if response is grpc.aio.EOF:
                    break
                event = sub.accept(response)
                if event is not None:
                    yield event
        except grpc.aio.AioRpcError as exc:
            if exc.code() not in RETRYABLE:
                raise
        finally:
            call.cancel()
        await asyncio.sleep(sub.next_delay())

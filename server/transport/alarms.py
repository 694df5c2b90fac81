"""AlarmService servicer: subscriptions (replay + live + heartbeats), list, silence, acknowledge."""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from datetime import datetime

from driftd.server.domain.errors import InvalidArgument, Unavailable
from driftd.server.domain.monitor import parse_monitor_name
from driftd.server.service.alarm_hub import AlarmHub
from driftd.server.service.alarm_manager import AlarmManager, AlarmView
from driftd.server.store.sqlite import SqliteStore, StoredAlarmEvent
from driftd.server.transport.codec import to_timestamp
from driftd.server.transport.errors import grpc_errors
from driftd.server.transport.lifecycle import DRAINING_MESSAGE, Lifecycle
from driftd.server.transport.monitors import page_size
from driftd.v1 import alarm_pb2, alarm_pb2_grpc, monitor_pb2

STATES = {"inactive": alarm_pb2.ALARM_STATE_INACTIVE, "pending": alarm_pb2.ALARM_STATE_PENDING,
          "firing": alarm_pb2.ALARM_STATE_FIRING, "resolved": alarm_pb2.ALARM_STATE_RESOLVED,
          "no_data": alarm_pb2.ALARM_STATE_NO_DATA}
KINDS = {"transition": alarm_pb2.ALARM_EVENT_KIND_TRANSITION, "silenced": alarm_pb2.ALARM_EVENT_KIND_SILENCED,
         "unsilenced": alarm_pb2.ALARM_EVENT_KIND_UNSILENCED, "acknowledged": alarm_pb2.ALARM_EVENT_KIND_ACKNOWLEDGED}
SEVERITIES = {"P1": monitor_pb2.SEVERITY_P1, "P2": monitor_pb2.SEVERITY_P2, "P3": monitor_pb2.SEVERITY_P3}
SEVERITY_NAMES = {v: k for k, v in SEVERITIES.items()}
DEFAULT_HEARTBEAT_S = 5.0
GRPC_GROUP = "grpc"  # the hub's name for the subscriptions this servicer opened (ended on drain)


def event_to_proto(e: StoredAlarmEvent) -> alarm_pb2.AlarmEvent:
    p = e.payload
    return alarm_pb2.AlarmEvent(
        sequence=e.sequence, alarm=p["alarm"], monitor=p["monitor"], rule_id=p["rule_id"], labels=p.get("labels", {}),
        kind=KINDS[p["kind"]], previous_state=STATES[p["previous_state"]], state=STATES[p["state"]],
        severity=SEVERITIES[p["severity"]], value=p["value"] if p.get("value") is not None else float("nan"),
        threshold=p["threshold"] if p.get("threshold") is not None else float("nan"), summary=p.get("summary", ""),
        runbook=p.get("runbook", ""), baseline=p.get("baseline", ""), snapshot=p.get("snapshot", ""),
        event_time=to_timestamp(datetime.fromisoformat(p["event_time"])), actor=p.get("actor", ""), note=p.get("note", ""),
    )


def alarm_to_proto(v: AlarmView, last_sequence: int = 0) -> alarm_pb2.Alarm:
    s = v.state
    out = alarm_pb2.Alarm(
        name=f"monitors/{v.monitor_id}/alarms/{v.alarm_id}", monitor=f"monitors/{v.monitor_id}", rule_id=v.rule_id,
        labels=v.labels, state=STATES[s.state], severity=SEVERITIES[v.severity], value=s.value, threshold=s.threshold,
        acknowledged=s.acknowledged, last_event_sequence=last_sequence,
    )
    if s.since is not None:
        out.state_since.CopyFrom(to_timestamp(s.since))
    if s.silenced_until is not None:
        out.silenced_until.CopyFrom(to_timestamp(s.silenced_until))
    return out


def parse_alarm_name(name: str, field: str = "name") -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "monitors" or parts[2] != "alarms" or not parts[3]:
        raise InvalidArgument.one(field, f"expected 'monitors/{{monitor_id}}/alarms/{{alarm_id}}', got {name!r}")
    return parse_monitor_name("/".join(parts[:2]), field), parts[3]


class AlarmServicer(alarm_pb2_grpc.AlarmServiceServicer):
    def __init__(self, store: SqliteStore, hub: AlarmHub, manager: AlarmManager, lifecycle: Lifecycle) -> None:
        self._store = store
        self._hub = hub
        self._manager = manager
        self._lifecycle = lifecycle
        self._drain_watch: asyncio.Task | None = None
        # One event goes to every matching subscriber: build its response once, not per stream.
        self._responses: OrderedDict[int, alarm_pb2.SubscribeAlarmsResponse] = OrderedDict()

    def _event_response(self, event: StoredAlarmEvent) -> alarm_pb2.SubscribeAlarmsResponse:
        response = self._responses.get(event.sequence)
        if response is None:
            response = alarm_pb2.SubscribeAlarmsResponse(event=event_to_proto(event))
            self._responses[event.sequence] = response
            if len(self._responses) > 4096:
                self._responses.popitem(last=False)
        return response

    def _watch_drain(self) -> None:
        """On drain, end every gRPC subscription with UNAVAILABLE (what `Lifecycle.guard_stream`
        does for other streams, without a task and a wait per message: one watcher for all)."""
        if self._drain_watch is None:
            async def watch() -> None:
                await self._lifecycle.draining.wait()
                self._hub.end_group(GRPC_GROUP, Unavailable(DRAINING_MESSAGE, reason="DRAINING"))
            self._drain_watch = asyncio.get_running_loop().create_task(watch(), name="alarm-subscriptions-drain")

    @grpc_errors
    async def SubscribeAlarms(self, request, context):
        monitors = {f"monitors/{parse_monitor_name(m, f'monitors[{i}]')}" for i, m in enumerate(request.monitors)}
        severities = set()
        for i, s in enumerate(request.severities):
            if s not in SEVERITY_NAMES:
                raise InvalidArgument.one(f"severities[{i}]", f"unknown severity {s}; use SEVERITY_P1, SEVERITY_P2 or SEVERITY_P3")
            severities.add(SEVERITY_NAMES[s])
        labels = dict(request.labels)
        heartbeat = DEFAULT_HEARTBEAT_S
        if request.HasField("heartbeat_interval"):
            heartbeat = request.heartbeat_interval.seconds + request.heartbeat_interval.nanos / 1e9
            if not (0.01 <= heartbeat <= 300):
                raise InvalidArgument.one("heartbeat_interval", f"must be between 10 ms and 300 s, got {heartbeat} s")

        def matches(e: StoredAlarmEvent) -> bool:
            p = e.payload
            return ((not monitors or p["monitor"] in monitors) and (not severities or p["severity"] in severities)
                    and all(p.get("labels", {}).get(k) == v for k, v in labels.items()))

        start_after = request.start_after_sequence if request.HasField("start_after_sequence") else None

        self._watch_drain()
        async for item in self._hub.subscribe(matches, start_after, heartbeat, group=GRPC_GROUP):
            if isinstance(item, int):
                yield alarm_pb2.SubscribeAlarmsResponse(heartbeat=alarm_pb2.Heartbeat(
                    high_water_sequence=item, time=to_timestamp(datetime.now().astimezone())))
            else:
                yield self._event_response(item)

    @grpc_errors
    async def ListAlarms(self, request, context):
        size = page_size(request.page_size)
        if request.parent in ("monitors/-", ""):
            monitors = await asyncio.to_thread(self._store.list_monitors, "", 100_000)
        else:
            monitors = [await asyncio.to_thread(self._store.get_monitor, parse_monitor_name(request.parent, "parent"))]
        states = {s for s in request.states}
        sev = {s for s in request.severities}
        views = []
        for monitor in monitors:
            for view in await self._manager.list(monitor):
                if (not states or STATES[view.state.state] in states) and (not sev or SEVERITIES[view.severity] in sev):
                    views.append(view)
        start = 0
        if request.page_token:
            try:
                start = int(request.page_token)
            except ValueError:
                raise InvalidArgument.one("page_token", "not a page token returned by this service") from None
        page = views[start:start + size]
        token = str(start + size) if start + size < len(views) else ""
        return alarm_pb2.ListAlarmsResponse(alarms=[alarm_to_proto(v) for v in page], next_page_token=token)

    @grpc_errors
    async def SilenceAlarm(self, request, context):
        monitor_id, aid = parse_alarm_name(request.name)
        monitor = await asyncio.to_thread(self._store.get_monitor, monitor_id)
        seconds = request.duration.seconds + request.duration.nanos / 1e9
        view, event = await self._manager.silence(monitor, aid, seconds, request.actor, request.note)
        return alarm_pb2.SilenceAlarmResponse(alarm=alarm_to_proto(view, event.sequence))

    @grpc_errors
    async def AcknowledgeAlarm(self, request, context):
        monitor_id, aid = parse_alarm_name(request.name)
        monitor = await asyncio.to_thread(self._store.get_monitor, monitor_id)
        view, event = await self._manager.acknowledge(monitor, aid, request.actor, request.note)
        return alarm_pb2.AcknowledgeAlarmResponse(alarm=alarm_to_proto(view, event.sequence))

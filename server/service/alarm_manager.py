"""Runs each monitor's alarm engine on its snapshots, persists instance state, publishes events,
and carries out silences and acknowledgements (which are events too)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any, Callable

from driftd.server.domain.alarms import FIRING, AlarmEngine, InstanceState, MetricFrame, alarm_id
from driftd.server.domain.errors import InvalidArgument, NotFound
from driftd.server.domain.monitor import Monitor
from driftd.server.service.alarm_hub import AlarmHub
from driftd.server.store.sqlite import SqliteStore


@dataclass(frozen=True)
class AlarmView:
    """One alarm instance as ListAlarms shows it."""

    monitor_id: str
    alarm_id: str
    rule_id: str
    labels: dict[str, str]
    severity: str
    state: InstanceState


class AlarmManager:
    def __init__(self, store: SqliteStore, hub: AlarmHub, clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc)):
        self._store = store
        self._hub = hub
        self._clock = clock
        self._engines: dict[str, AlarmEngine] = {}
        self._lock = asyncio.Lock()

    async def engine_for(self, monitor: Monitor) -> AlarmEngine:
        engine = self._engines.get(monitor.monitor_id)
        baseline = f"{monitor.name}/baselines/{monitor.active_baseline_id}" if monitor.active_baseline_id else ""
        if engine is None or engine.rules != monitor.spec.rules:
            stored = await asyncio.to_thread(self._store.list_alarm_instances, monitor.monitor_id)
            states = {aid: InstanceState.from_dict(s["state"]) for _, aid, s in stored}
            engine = AlarmEngine(monitor.monitor_id, monitor.spec.rules, baseline=baseline, states=states)
            for _, aid, s in stored:
                engine.instances.setdefault(aid, (next((r for r in monitor.spec.rules if r.rule_id == s["rule_id"]), None),
                                                        tuple(tuple(kv) for kv in s["labels"])))
            self._engines[monitor.monitor_id] = engine
        engine.baseline = baseline
        return engine

    async def on_snapshot(self, monitor: Monitor, frame: MetricFrame, row_count: int, now: datetime, snapshot_name: str) -> list:
        """Evaluate the monitor's rules on one snapshot; persist and publish the transitions."""
        async with self._lock:
            engine = await self.engine_for(monitor)
            transitions = engine.evaluate(frame, now=now, row_count=row_count)
            if not transitions:
                return []
            events = [(monitor.monitor_id, t.alarm_id, now, t.payload(baseline=engine.baseline, snapshot=snapshot_name))
                      for t in transitions]
            await asyncio.to_thread(self._persist_states, monitor.monitor_id, engine, {t.alarm_id for t in transitions})
            return await self._hub.publish(events)

    def _persist_states(self, monitor_id: str, engine: AlarmEngine, alarm_ids: set[str]) -> None:
        for aid in alarm_ids:
            rule, labels = engine.instances[aid]
            self._store.put_alarm_instance(monitor_id, aid, {
                "rule_id": rule.rule_id if rule else aid, "labels": [list(kv) for kv in labels],
                "severity": rule.severity.value if rule else "P3", "state": engine.states[aid].to_dict()})

    async def _operator_event(self, monitor: Monitor, aid: str, kind: str, actor: str, note: str,
                              apply: Callable[[AlarmEngine], InstanceState]) -> tuple[AlarmView, Any]:
        async with self._lock:
            engine = await self.engine_for(monitor)
            if aid not in engine.states:
                raise NotFound("alarm", f"{monitor.name}/alarms/{aid}")
            state = apply(engine)
            rule, labels = engine.instances[aid]
            now = self._clock()
            payload = {
                "kind": kind, "alarm": f"{monitor.name}/alarms/{aid}", "monitor": monitor.name,
                "rule_id": rule.rule_id if rule else aid, "labels": dict(labels), "previous_state": state.state,
                "state": state.state, "severity": rule.severity.value if rule else "P3", "value": None, "threshold": None,
                "summary": f"{kind} by {actor or 'unknown'}" + (f": {note}" if note else ""), "runbook": "",
                "baseline": engine.baseline, "snapshot": "", "event_time": now.isoformat(), "actor": actor, "note": note,
            }
            await asyncio.to_thread(self._persist_states, monitor.monitor_id, engine, {aid})
            (event,) = await self._hub.publish([(monitor.monitor_id, aid, now, payload)])
            return self._view(monitor.monitor_id, engine, aid), event

    async def silence(self, monitor: Monitor, aid: str, seconds: float, actor: str, note: str):
        if not (0 < seconds <= 30 * 86_400):
            raise InvalidArgument.one("duration", f"must be between 0 and 30 days, got {seconds} s")
        until = self._clock() + timedelta(seconds=seconds)
        return await self._operator_event(monitor, aid, "silenced", actor, note, lambda e: e.silence(aid, until))

    async def acknowledge(self, monitor: Monitor, aid: str, actor: str, note: str):
        return await self._operator_event(monitor, aid, "acknowledged", actor, note, lambda e: e.acknowledge(aid))

    async def list(self, monitor: Monitor) -> list[AlarmView]:
        engine = await self.engine_for(monitor)
        return [self._view(monitor.monitor_id, engine, aid) for aid in sorted(engine.states)]

    @staticmethod
    def _view(monitor_id: str, engine: AlarmEngine, aid: str) -> AlarmView:
        rule, labels = engine.instances.get(aid, (None, ()))
        return AlarmView(monitor_id, aid, rule.rule_id if rule else aid, dict(labels),
                         rule.severity.value if rule else "P3", engine.states[aid])

    def forget(self, monitor_id: str) -> None:
        self._engines.pop(monitor_id, None)

    @property
    def store(self) -> SqliteStore:
        return self._store

    def loaded_engines(self) -> dict[str, AlarmEngine]:
        """A copy of the monitor -> engine map (engines load on a monitor's first snapshot)."""
        return dict(self._engines)

    def firing_counts(self) -> dict[tuple[str, str], int]:
        """(monitor_id, severity) -> instances firing now. Safe from another thread (a scrape):
        it only copies the engines' dicts."""
        counts: dict[tuple[str, str], int] = {}
        for monitor_id, engine in list(self._engines.items()):
            for aid, state in list(engine.states.items()):
                if state.state != FIRING:
                    continue
                rule, _ = engine.instances.get(aid, (None, ()))
                key = (monitor_id, rule.severity.value if rule else "P3")
                counts[key] = counts.get(key, 0) + 1
        return counts


__all__ = ["AlarmManager", "AlarmView", "alarm_id"]

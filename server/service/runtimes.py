"""The registry of per-monitor runtimes: built from the store (monitor + active baseline) at start
(`warm_up`) or when first needed, rebuilt when the baseline changes, drained on shutdown."""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import Executor

from driftd.server.domain.errors import FailedPrecondition, NotFound
from driftd.server.logs import get_logger
from driftd.server.service import engine_adapter
from driftd.server.service.dedupe import SequenceDedupe
from driftd.server.service.runtime import MonitorRuntime, QueueLimits
from driftd.server.store.sqlite import SqliteStore

log = get_logger("driftd.runtimes")


class Runtimes:
    def __init__(self, store: SqliteStore, executor: Executor, *, snapshot_retention: int,
                 limits: QueueLimits = QueueLimits(), on_snapshot=None, on_applied=None, on_evaluated=None) -> None:
        self._store = store
        self._executor = executor
        self._retention = snapshot_retention
        self._limits = limits
        self._on_snapshot = on_snapshot
        self._on_applied = on_applied
        self._on_evaluated = on_evaluated
        self._runtimes: dict[str, MonitorRuntime] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def cached(self, monitor_id: str) -> MonitorRuntime | None:
        return self._runtimes.get(monitor_id)

    def all(self) -> list[MonitorRuntime]:
        return list(self._runtimes.values())

    async def get(self, monitor_id: str) -> MonitorRuntime:
        """The monitor's runtime. NOT_FOUND for an unknown monitor, FAILED_PRECONDITION without an
        active baseline."""
        runtime = self._runtimes.get(monitor_id)
        if runtime is not None:
            return runtime
        lock = self._locks.setdefault(monitor_id, asyncio.Lock())
        async with lock:
            runtime = self._runtimes.get(monitor_id)
            if runtime is not None:
                return runtime
            monitor = await asyncio.to_thread(self._store.get_monitor, monitor_id)
            if not monitor.active_baseline_id:
                raise FailedPrecondition(
                    f"monitor {monitor.name!r} has no active baseline: create one (BaselineService.CreateBaseline with "
                    "activate=true, or `driftd baseline create`) before sending batches",
                    reason="NO_ACTIVE_BASELINE", metadata={"monitor": monitor.name},
                )
            stored = await asyncio.to_thread(self._store.get_baseline, monitor_id, monitor.active_baseline_id)
            saved = await asyncio.to_thread(self._store.take_engine_state, monitor_id, monitor.active_baseline_id)
            window = await asyncio.get_running_loop().run_in_executor(
                self._executor, engine_adapter.open_window, monitor.spec, stored.blob, saved[0] if saved else None)
            runtime = MonitorRuntime(monitor, monitor.active_baseline_id, window, self._executor, self._persist, self._limits,
                                     on_snapshot=self._on_snapshot, on_applied=self._on_applied, on_evaluated=self._on_evaluated,
                                     dedupe=SequenceDedupe.from_dict(saved[1]) if saved else None)
            runtime.latest_snapshot = await asyncio.to_thread(self._latest_snapshot, monitor_id, monitor.active_baseline_id)
            runtime.start()
            self._runtimes[monitor_id] = runtime
            return runtime

    def _latest_snapshot(self, monitor_id: str, baseline_id: str) -> dict | None:
        """The last stored snapshot against the same baseline: what /metrics shows until the next
        evaluation (so a restart or a rebuilt runtime does not make the drift series vanish)."""
        try:
            stored = self._store.get_snapshot(monitor_id)
        except NotFound:
            return None
        snapshot = json.loads(stored.payload)
        if snapshot.get("baseline") != baseline_id:
            return None
        return {**snapshot, "snapshot_id": stored.snapshot_id}

    async def warm_up(self) -> int:
        """Load the runtime of every monitor with an active baseline (at start): evaluations resume
        on their cadence and /metrics shows the last snapshots without waiting for traffic.
        Returns how many were loaded; a monitor that fails to load is logged and skipped."""
        loaded, after = 0, ""
        while True:
            page = await asyncio.to_thread(self._store.list_monitors, after, 200)
            for monitor in page:
                if not monitor.active_baseline_id:
                    continue
                try:
                    await self.get(monitor.monitor_id)
                    loaded += 1
                except Exception as exc:  # noqa: BLE001 - one broken monitor must not stop the others
                    log.error("warm_up_failed", monitor=monitor.monitor_id, exc_info=exc)
            if len(page) < 200:
                return loaded
            after = page[-1].monitor_id

    def _persist(self, monitor_id: str, evaluate_time, payload: bytes) -> int:
        return self._store.put_snapshot(monitor_id, evaluate_time, payload, keep_last=self._retention)

    async def invalidate(self, monitor_id: str) -> None:
        """Drain and drop a monitor's runtime (after a baseline activation, an update or a delete);
        the next batch rebuilds it from the store."""
        runtime = self._runtimes.pop(monitor_id, None)
        if runtime is not None:
            await runtime.close()

    async def monitor_changed(self, monitor) -> None:
        """After UpdateMonitor: new rules / labels apply in place; a new window or statistics spec
        rebuilds the runtime (its panes were shaped by the old spec)."""
        runtime = self._runtimes.get(monitor.monitor_id)
        if runtime is None:
            return
        old = runtime.monitor.spec
        if (old.window, old.statistics, old.schema) != (monitor.spec.window, monitor.spec.statistics, monitor.spec.schema):
            await self.invalidate(monitor.monitor_id)
        else:
            runtime.monitor = monitor

    async def close_all(self) -> None:
        """Apply every queued batch, stop all runtimes, and save their windows (shutdown), so the next
        start resumes them with nothing lost or counted twice."""
        runtimes, self._runtimes = list(self._runtimes.values()), {}
        await asyncio.gather(*(r.close() for r in runtimes))
        loop = asyncio.get_running_loop()
        for r in runtimes:
            blob = await loop.run_in_executor(self._executor, r.save_window)
            await asyncio.to_thread(self._store.put_engine_state, r.monitor_id, r.baseline_id, blob, r.dedupe_state())

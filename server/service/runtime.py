"""Per-monitor runtime: bounded ingest queue, exactly-once accounting, a worker that coalesces
queued batches into one engine update per pane, an evaluation loop, and snapshot fan-out.

Ordering guarantee: a batch is acknowledged once it is on the queue; an evaluation is itself a
queue entry, so a snapshot includes every batch acknowledged before the evaluation was requested.
Torch work runs on a shared executor, never on the event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import json
import time
from collections import deque
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any, Awaitable, Callable, Protocol

from driftd.server import heap
from driftd.server.domain.errors import ResourceExhausted
from driftd.server.domain.monitor import Monitor
from driftd.server.domain.batch import Batch, concat_batches
from driftd.server.logs import get_logger
from driftd.server.service.dedupe import SequenceDedupe

log = get_logger("driftd.runtime")


def _coalesce_key(b: Batch) -> tuple:
    return (b.latency_ms is None, b.status_codes is None, b.request_ids is None, b.event_time, tuple(sorted(b.embeddings)))


class WindowEngine(Protocol):
    """What the runtime needs from the drift engine (see service/engine_adapter.py)."""

    def update(self, batch: Batch, now: float) -> None: ...

    def evaluate(self, now: float) -> dict[str, Any]: ...

    def write_labels(self, request_ids: list[str], labels: Any, now: float) -> Any: ...

    def save(self) -> bytes: ...

    def warm_up(self) -> None: ...


@dataclass(frozen=True)
class QueueLimits:
    max_batches: int = 1024
    max_rows: int = 4_000_000
    max_coalesce_rows: int = 262_144  # rows per engine call
    # a thin queue (fewer rows than this) waits `coalesce_wait_s` once for more batches before an
    # engine call: small batches then share one update (and one executor round trip) instead of
    # paying the per-call cost each; bounded extra latency, never applied while an evaluation waits
    coalesce_min_rows: int = 16_384
    coalesce_wait_s: float = 0.002
    retry_after_s: float = 0.05


@dataclass
class _Evaluate:
    now: datetime
    done: asyncio.Future


@dataclass
class _Labels:
    request_ids: list[str]
    labels: Any
    now: datetime
    done: asyncio.Future


@dataclass
class RuntimeCounters:
    accepted_rows: int = 0
    accepted_batches: int = 0
    duplicate_batches: int = 0
    refused_batches: int = 0  # backpressure
    applied_rows: int = 0
    failed_rows: int = 0


@dataclass(frozen=True)
class Offer:
    duplicate: bool
    queue_depth: int


class MonitorRuntime:
    def __init__(self, monitor: Monitor, baseline_id: str, window: WindowEngine, executor: Executor,
                 persist_snapshot: Callable[[str, datetime, bytes], int], limits: QueueLimits = QueueLimits(),
                 clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
                 on_snapshot: Callable[["MonitorRuntime", dict[str, Any]], Awaitable[None]] | None = None,
                 on_applied: Callable[[str, int], None] | None = None, dedupe: SequenceDedupe | None = None,
                 on_evaluated: Callable[[str, float], None] | None = None) -> None:
        self.monitor = monitor
        self.monitor_id = monitor.monitor_id
        self.baseline_id = baseline_id
        self._window = window
        self._executor = executor
        self._persist = persist_snapshot
        self._on_snapshot = on_snapshot
        self._on_applied = on_applied
        self._on_evaluated = on_evaluated
        self._limits = limits
        self._clock = clock
        self._queue: deque[Batch | _Evaluate] = deque()
        self._queued_rows = 0
        self._wake = asyncio.Event()
        self._flush_now = asyncio.Event()  # cuts the coalescing wait short
        self._dedupe = dedupe or SequenceDedupe()
        self._watchers: set[asyncio.Queue] = set()
        self.counters = RuntimeCounters()
        self.latest_snapshot: dict[str, Any] | None = None
        self._tasks: list[asyncio.Task] = []
        self._closing = False

    # -- ingest (called on the event loop; O(1), no torch) ---------------------------------------

    def offer(self, producer_id: str, sequence: int, batch: Batch) -> Offer:
        """Queue a validated batch. Duplicate -> not queued, not counted. Full queue ->
        ResourceExhausted with a retry delay, nothing changed."""
        if self._dedupe.is_duplicate(producer_id, sequence):
            self.counters.duplicate_batches += 1
            return Offer(duplicate=True, queue_depth=len(self._queue))
        rows = batch.n_rows
        if len(self._queue) >= self._limits.max_batches or self._queued_rows + rows > self._limits.max_rows:
            self.counters.refused_batches += 1
            raise ResourceExhausted(
                f"ingest queue of monitors/{self.monitor_id} is full ({len(self._queue)} batches, {self._queued_rows} rows); "
                f"retry after {self._limits.retry_after_s:.3f} s",
                retry_after_s=self._limits.retry_after_s, reason="QUEUE_FULL",
            )
        self._dedupe.claim(producer_id, sequence)
        self._queue.append(batch)
        self._queued_rows += rows
        self.counters.accepted_rows += rows
        self.counters.accepted_batches += 1
        self._wake.set()
        if self._queued_rows >= self._limits.coalesce_min_rows:
            self._flush_now.set()
        return Offer(duplicate=False, queue_depth=len(self._queue))

    def save_window(self) -> bytes:
        """The window's state (call after `close()`: nothing is queued or running then)."""
        return self._window.save()

    def dedupe_state(self) -> dict:
        return self._dedupe.to_dict()

    @property
    def queue_depth(self) -> int:
        return len(self._queue)

    @property
    def queued_batches(self) -> int:
        """Batches waiting (evaluations and label joins in the queue are not ingest backlog).
        Safe from another thread: copies the deque first."""
        return sum(1 for entry in list(self._queue) if isinstance(entry, Batch))

    # -- evaluation ----------------------------------------------------------------------------

    async def evaluate(self, now: datetime | None = None) -> dict[str, Any]:
        """Evaluate after every batch queued so far; persist and publish the snapshot."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append(_Evaluate(now or self._clock(), done))
        self._wake.set()
        self._flush_now.set()
        return await done

    async def write_labels(self, request_ids: list[str], labels: Any) -> Any:
        """Join delayed labels (through the queue, after every batch acknowledged before)."""
        done = asyncio.get_running_loop().create_future()
        self._queue.append(_Labels(request_ids, labels, self._clock(), done))
        self._wake.set()
        self._flush_now.set()
        return await done

    def watch(self) -> asyncio.Queue:
        q: asyncio.Queue = asyncio.Queue(maxsize=16)
        self._watchers.add(q)
        return q

    def unwatch(self, q: asyncio.Queue) -> None:
        self._watchers.discard(q)

    def _publish(self, snapshot: dict[str, Any]) -> None:
        self.latest_snapshot = snapshot
        for q in list(self._watchers):
            if q.full():  # a slow watcher loses its oldest snapshot, never stalls the monitor
                q.get_nowait()
            q.put_nowait(snapshot)

    # -- worker --------------------------------------------------------------------------------

    def start(self) -> None:
        # A fresh context: a runtime is created inside whichever RPC first needs it, and its tasks
        # must not carry that RPC's log context (method, peer) for the rest of their life.
        self._tasks = [asyncio.create_task(self._worker(), name=f"worker-{self.monitor_id}", context=contextvars.Context()),
                       asyncio.create_task(self._evaluation_loop(), name=f"eval-{self.monitor_id}", context=contextvars.Context())]

    async def _worker(self) -> None:
        loop = asyncio.get_running_loop()
        try:  # compile the update kernels before the first batch (batches queue and are acked meanwhile)
            await loop.run_in_executor(self._executor, self._window.warm_up)
            if not self._closing:
                heap.request_freeze("kernel_warm_up")  # the compiled kernels are long-lived
        except Exception as exc:  # noqa: BLE001 - the first update compiles instead
            log.warning("kernel_warm_up_failed", monitor=self.monitor_id, exc_info=exc)
        while True:
            if not self._queue:
                self._wake.clear()
                if self._closing:
                    return
                await self._wake.wait()
                continue
            head = self._queue[0]
            if isinstance(head, _Labels):
                self._queue.popleft()
                try:
                    joined = await loop.run_in_executor(self._executor, self._window.write_labels, head.request_ids, head.labels,
                                                        head.now.timestamp())
                    head.done.set_result(joined)
                except Exception as exc:  # noqa: BLE001 - reported to the caller
                    head.done.set_exception(exc)
                continue
            if isinstance(head, _Evaluate):
                self._queue.popleft()
                try:
                    started = time.perf_counter()
                    snapshot = await loop.run_in_executor(self._executor, self._window.evaluate, head.now.timestamp())
                    if self._on_evaluated is not None:
                        self._on_evaluated(self.monitor_id, time.perf_counter() - started)
                    snapshot = {**snapshot, "baseline": self.baseline_id}
                    payload = json.dumps(snapshot).encode()
                    snapshot_id = await asyncio.to_thread(self._persist, self.monitor_id, head.now, payload)
                    snapshot = {**snapshot, "snapshot_id": snapshot_id}
                    self._publish(snapshot)
                    if self._on_snapshot is not None:
                        await self._on_snapshot(self, snapshot)
                    if not head.done.done():
                        head.done.set_result(snapshot)
                except Exception as exc:  # noqa: BLE001 - reported to the caller and the log
                    log.error("evaluation_failed", monitor=self.monitor_id, exc_info=exc)
                    if not head.done.done():
                        head.done.set_exception(exc)
                continue
            self._flush_now.clear()
            if (self._queued_rows < self._limits.coalesce_min_rows and self._limits.coalesce_wait_s > 0 and not self._closing
                    and all(isinstance(entry, Batch) for entry in self._queue)
                    and self._queue[0].event_time is None):  # event-time batches do not merge
                # ends early when an evaluation / label join / close is queued or enough rows are
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._flush_now.wait(), self._limits.coalesce_wait_s)
            batches = self._take_coalescible()
            rows = sum(b.n_rows for b in batches)
            try:
                # concatenation copies every row: it runs on the executor with the update, never on the loop
                await loop.run_in_executor(self._executor, self._apply, batches, self._clock().timestamp())
                self.counters.applied_rows += rows
                if self._on_applied is not None:
                    self._on_applied(self.monitor_id, rows)
            except Exception as exc:  # noqa: BLE001 - a bug must not kill the worker; counted and logged
                self.counters.failed_rows += rows
                log.error("update_failed", monitor=self.monitor_id, rows=rows, exc_info=exc)
            finally:
                self._queued_rows -= rows

    def _apply(self, batches: list[Batch], now: float) -> None:
        self._window.update(concat_batches(batches) if len(batches) > 1 else batches[0], now)

    def _take_coalescible(self) -> list[Batch]:
        """Pop the longest run of queued batches that one engine update can take: same optional
        groups and event time (so every row lands in the pane it belongs to), up to max_coalesce_rows."""
        first = self._queue.popleft()
        run, rows = [first], first.n_rows
        key = _coalesce_key(first)
        while (self._queue and isinstance(self._queue[0], Batch) and _coalesce_key(self._queue[0]) == key
               and rows + self._queue[0].n_rows <= self._limits.max_coalesce_rows):
            nxt = self._queue.popleft()
            run.append(nxt)
            rows += nxt.n_rows
        return run

    async def _evaluation_loop(self) -> None:
        """Evaluate on a fixed cadence (ticks at start + k * interval, not `interval` after the previous
        evaluation ended), so a change waits at most one interval for its evaluation; missed ticks
        are skipped rather than bunched."""
        interval = self.monitor.spec.window.effective_evaluation_interval
        loop = asyncio.get_running_loop()
        next_at = loop.time() + interval
        while not self._closing:
            await asyncio.sleep(max(0.0, next_at - loop.time()))
            if self._closing:
                return
            next_at += interval
            if next_at <= loop.time():
                next_at = loop.time() + interval
            try:
                await self.evaluate()
            except Exception:  # noqa: BLE001 - already logged by the worker; keep evaluating
                pass

    async def close(self) -> None:
        """Apply everything queued, then stop."""
        self._closing = True
        self._wake.set()
        self._flush_now.set()
        worker, evaluator = self._tasks or (None, None)
        if evaluator is not None:
            evaluator.cancel()
        if worker is not None:
            await worker
        # Reap the cancelled evaluator and drop the task references: a kept task holding its
        # CancelledError (whose traceback holds this runtime) is a reference cycle, and one caught by
        # a heap freeze (server/heap.py) would keep the whole window alive for good.
        await asyncio.gather(*(self._tasks or ()), return_exceptions=True)
        self._tasks = []
        for q in list(self._watchers):  # None tells each watcher the stream is over
            if q.full():
                q.get_nowait()
            q.put_nowait(None)

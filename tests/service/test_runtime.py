"""MonitorRuntime with a recording engine: ordering, coalescing, backpressure, exactly-once."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import numpy as np
import pytest

from driftd.server.domain.errors import ResourceExhausted
from driftd.server.domain.monitor import Monitor, MonitorSpec, WindowSpec
from driftd.server.domain.batch import Batch
from driftd.server.domain.schema import NumericFeature, Schema
from driftd.server.service.runtime import MonitorRuntime, QueueLimits

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


class RecordingEngine:
    def __init__(self, delay: float = 0.0):
        self.updates: list[int] = []
        self.rows = 0
        self.delay = delay

    def update(self, batch: Batch, now) -> None:
        import time

        time.sleep(self.delay)
        self.updates.append(batch.n_rows)
        self.rows += int(np.isfinite(batch.numeric).sum())

    def evaluate(self, now) -> dict:
        return {"row_count": self.rows}

    def warm_up(self) -> None:
        self.warmed = True


def make_runtime(engine, limits=QueueLimits(), persisted=None):
    spec = MonitorSpec(schema=Schema(numeric=(NumericFeature("x"),)), window=WindowSpec(pane_seconds=3600))
    monitor = Monitor("m", spec, T0, T0, "e", "b1")
    persisted = persisted if persisted is not None else []

    def persist(monitor_id, t, payload):
        persisted.append(payload)
        return len(persisted)

    rt = MonitorRuntime(monitor, "b1", engine, ThreadPoolExecutor(1), persist, limits)
    rt.start()
    return rt


def rows(n: int) -> Batch:
    return Batch(numeric=np.ones((n, 1), np.float32))


async def test_snapshot_sees_every_batch_acked_before_it_and_batches_coalesce():
    engine = RecordingEngine(delay=0.05)
    persisted = []
    rt = make_runtime(engine, persisted=persisted)
    for seq in range(1, 21):
        rt.offer("p", seq, rows(10))
    snap = await rt.evaluate(T0)
    assert snap["row_count"] == 200 and snap["snapshot_id"] == 1 and snap["baseline"] == "b1"
    assert len(engine.updates) < 20  # coalesced while the engine was busy
    assert sum(engine.updates) == 200
    assert len(persisted) == 1
    await rt.close()


async def test_duplicates_are_not_counted():
    engine = RecordingEngine()
    rt = make_runtime(engine)
    assert not rt.offer("p", 1, rows(5)).duplicate
    assert rt.offer("p", 1, rows(5)).duplicate
    assert not rt.offer("q", 1, rows(5)).duplicate
    snap = await rt.evaluate(T0)
    assert snap["row_count"] == 10
    assert rt.counters.duplicate_batches == 1 and rt.counters.accepted_rows == 10
    await rt.close()


async def test_full_queue_refuses_with_retry_and_changes_nothing():
    engine = RecordingEngine(delay=0.2)
    rt = make_runtime(engine, QueueLimits(max_batches=2, retry_after_s=0.01))
    rt.offer("p", 1, rows(1))
    await asyncio.sleep(0.05)  # worker picks batch 1 up and is busy
    rt.offer("p", 2, rows(1))
    rt.offer("p", 3, rows(1))
    with pytest.raises(ResourceExhausted) as err:
        rt.offer("p", 4, rows(1))
    assert err.value.retry_after_s == 0.01
    # the refused sequence was not claimed: its resend is accepted, not a duplicate
    await asyncio.sleep(0.5)
    assert not rt.offer("p", 4, rows(1)).duplicate
    snap = await rt.evaluate(T0)
    assert snap["row_count"] == 4
    await rt.close()


async def test_close_applies_everything_queued():
    engine = RecordingEngine(delay=0.01)
    rt = make_runtime(engine)
    for seq in range(1, 11):
        rt.offer("p", seq, rows(3))
    await rt.close()
    assert engine.rows == 30


async def test_engine_failure_is_counted_and_worker_survives():
    class Flaky(RecordingEngine):
        def update(self, batch, now):
            if batch.n_rows == 13:
                raise RuntimeError("boom")
            super().update(batch, now)

    engine = Flaky()
    rt = make_runtime(engine)
    rt.offer("p", 1, rows(13))
    await asyncio.sleep(0.05)
    rt.offer("p", 2, rows(2))
    snap = await rt.evaluate(T0)
    assert snap["row_count"] == 2 and rt.counters.failed_rows == 13
    await rt.close()


async def test_watchers_receive_snapshots_and_end_marker():
    rt = make_runtime(RecordingEngine())
    q = rt.watch()
    await rt.evaluate(T0)
    assert (await q.get())["snapshot_id"] == 1
    await rt.close()
    assert await q.get() is None


async def test_kernel_warm_up_runs_first_and_its_failure_does_not_stop_the_worker():
    class Warming(RecordingEngine):
        def warm_up(self):
            assert not self.updates  # before any batch is applied
            raise RuntimeError("no compiler")

    engine = Warming()
    rt = make_runtime(engine)
    rt.offer("p", 1, rows(5))
    snap = await rt.evaluate()
    assert snap["row_count"] == 5 and rt.counters.applied_rows == 5
    await rt.close()


@pytest.mark.parametrize("wait_s,max_updates", [(0.05, 1), (0.0, 10)])
async def test_a_thin_queue_waits_briefly_so_small_batches_share_an_update(wait_s, max_updates):
    engine = RecordingEngine()
    rt = make_runtime(engine, limits=QueueLimits(coalesce_wait_s=wait_s))
    await asyncio.sleep(0.01)  # the worker's warm-up is done; it waits for batches
    for seq in range(1, 11):  # batches trickle in, one per loop turn
        rt.offer("p", seq, rows(3))
        for _ in range(5):
            await asyncio.sleep(0)
    snap = await rt.evaluate(T0)
    assert snap["row_count"] == 30 and sum(engine.updates) == 30
    assert (len(engine.updates) == 1) if max_updates == 1 else (len(engine.updates) > 1)
    await rt.close()


async def test_an_evaluation_is_not_held_back_by_the_coalescing_wait():
    engine = RecordingEngine()
    rt = make_runtime(engine, limits=QueueLimits(coalesce_wait_s=5.0))
    await asyncio.sleep(0.01)
    rt.offer("p", 1, rows(4))
    snap = await asyncio.wait_for(rt.evaluate(T0), timeout=1.0)  # the 5 s wait is cut short
    assert snap["row_count"] == 4
    rt.offer("p", 2, rows(4))
    await asyncio.sleep(0.05)  # the worker is in its wait again
    await asyncio.wait_for(rt.close(), timeout=1.0)  # so is closing
    assert engine.rows == 8

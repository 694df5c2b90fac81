"""AlarmHub's fan-out directly (no gRPC): many subscribers joining at random cursors while events
are published concurrently each see exactly the log after their cursor, in order, once; heartbeats
never cover an event not yet yielded; lag and group ends come after the events already offered."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timezone

import pytest

from driftd.server.domain.errors import Unavailable
from driftd.server.service.alarm_hub import AlarmHub, Subscription, SubscriberLagged
from driftd.server.store.sqlite import SqliteStore

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


def event(i: int, monitor: str = "m") -> tuple:
    return (monitor, f"a{i}", T0, {"kind": "transition", "monitor": f"monitors/{monitor}", "i": i})


@pytest.fixture
def hub(tmp_path):
    store = SqliteStore(tmp_path / "db.sqlite3")
    yield AlarmHub(store, retention=100_000)
    store.close()


async def take(agen, n: int, timeout: float = 10.0) -> list:
    out = []
    async def run():
        async for item in agen:
            if not isinstance(item, int):
                out.append(item.sequence)
                if len(out) == n:
                    return
    await asyncio.wait_for(run(), timeout)
    await agen.aclose()
    return out


async def test_concurrent_publishers_and_random_cursors_no_gap_no_duplicate(hub):
    rng = random.Random(7)
    total_batches, per_batch = 60, 3
    total = total_batches * per_batch
    await hub.publish([event(i) for i in range(10)])  # something to replay from the start
    final = 10 + total

    async def publisher(k: int):
        for b in range(total_batches // 2):
            await hub.publish([event(1000 * k + b * per_batch + j) for j in range(per_batch)])
            await asyncio.sleep(rng.random() * 0.002)

    async def subscriber():
        await asyncio.sleep(rng.random() * 0.05)  # join while publishing
        cursor = rng.choice([None, 0, rng.randrange(0, 10 + total // 2)])
        after = hub.high_water() if cursor is None else cursor
        got = []
        agen = hub.subscribe(lambda e: True, cursor, heartbeat_s=60)
        async for item in agen:
            got.append(item.sequence)
            if item.sequence == final:
                break
        await agen.aclose()
        return cursor, after, got

    subscribers = [asyncio.create_task(subscriber()) for _ in range(200)]
    await asyncio.gather(publisher(1), publisher(2))
    for cursor, after, got in await asyncio.gather(*subscribers):
        assert got == sorted(set(got)), "out of order or duplicated"
        assert got[-1] == final
        if cursor is not None:
            assert got == list(range(cursor + 1, final + 1)), (cursor, got[:5])
        else:  # live only: a contiguous tail of the log, after the high water read before subscribing
            assert got == list(range(got[0], final + 1)) and got[0] > after
    assert hub.subscriber_count == 0


async def test_heartbeat_never_covers_an_event_offered_but_not_yet_yielded(hub, monkeypatch):
    """The heartbeat timer and a publish can race: if an event arrives after the timer fired but
    before the reader resumed, the reader yields the event (not a heartbeat past it)."""
    await hub.publish([event(0)])
    real_wait = Subscription.wait
    raced = []

    async def racy_wait(self):
        if not raced:
            raced.append(True)
            stored = await hub.publish([event(1)])  # offered to `self` by the hub
            assert stored[0].sequence in {e.sequence for e in self.pending}
            return False  # "the timer fired"
        return await real_wait(self)

    monkeypatch.setattr(Subscription, "wait", racy_wait)
    agen = hub.subscribe(lambda e: True, None, heartbeat_s=0.01)
    first = await asyncio.wait_for(agen.__anext__(), 5)
    assert not isinstance(first, int) and first.sequence == 2
    beat = await asyncio.wait_for(agen.__anext__(), 5)
    assert beat == 2
    await agen.aclose()


async def test_heartbeat_reports_events_filtered_out(hub):
    agen = hub.subscribe(lambda e: e.payload["monitor"] == "monitors/x", None, heartbeat_s=0.02)
    assert await asyncio.wait_for(agen.__anext__(), 5) == 0
    await hub.publish([event(0, "other"), event(1, "other")])
    assert await asyncio.wait_for(agen.__anext__(), 5) == 2
    await agen.aclose()


async def test_heartbeats_keep_their_interval_while_events_flow_and_after(hub):
    """Events postpone the heartbeat (it comes `heartbeat_s` after the last thing yielded), and
    heartbeats keep coming at that interval once events stop."""
    loop = asyncio.get_running_loop()
    agen = hub.subscribe(lambda e: True, None, heartbeat_s=0.1)
    nxt = asyncio.ensure_future(agen.__anext__())
    start = loop.time()
    for i in range(6):  # an event every 40 ms for 240 ms: no heartbeat in between
        await asyncio.sleep(0.04)
        await hub.publish([event(i)])
        item = await asyncio.wait_for(nxt, 5)
        assert not isinstance(item, int), f"heartbeat {item} at {loop.time() - start:.3f} s while events flow"
        nxt = asyncio.ensure_future(agen.__anext__())
    last_event = loop.time()
    beats = []
    for _ in range(3):
        beats.append((await asyncio.wait_for(nxt, 5), loop.time()))
        nxt = asyncio.ensure_future(agen.__anext__())
    assert [b for b, _ in beats] == [6, 6, 6]
    assert 0.09 <= beats[0][1] - last_event < 0.5
    assert all(0.09 <= b[1] - a[1] < 0.5 for a, b in zip(beats, beats[1:]))
    nxt.cancel()
    await agen.aclose()


async def test_lagged_subscriber_gets_its_buffer_then_the_lag(hub):
    hub._buffer = 5
    agen = hub.subscribe(lambda e: True, None, heartbeat_s=60)
    first = asyncio.ensure_future(agen.__anext__())
    await asyncio.sleep(0.01)  # registered and parked
    await hub.publish([event(i) for i in range(8)])  # 1 wakes it, 5 buffered in all, the rest overflow
    got = [(await first).sequence]
    with pytest.raises(SubscriberLagged) as err:
        while True:
            got.append((await agen.__anext__()).sequence)
    assert got == [1, 2, 3, 4, 5]
    assert err.value.metadata == {"last_sequence": "5"}


async def test_end_group_ends_that_group_after_offered_events_and_refuses_new_ones(hub):
    grpc_sub = hub.subscribe(lambda e: True, None, heartbeat_s=60, group="grpc")
    other = hub.subscribe(lambda e: True, None, heartbeat_s=60)
    a = asyncio.ensure_future(grpc_sub.__anext__())
    b = asyncio.ensure_future(other.__anext__())
    await asyncio.sleep(0.01)
    await hub.publish([event(0), event(1)])
    hub.end_group("grpc", Unavailable("draining", reason="DRAINING"))
    assert (await a).sequence == 1
    assert (await grpc_sub.__anext__()).sequence == 2  # offered before the end: still delivered
    with pytest.raises(Unavailable):
        await grpc_sub.__anext__()
    assert (await b).sequence == 1 and (await other.__anext__()).sequence == 2  # other groups go on
    await hub.publish([event(2)])
    assert (await other.__anext__()).sequence == 3
    with pytest.raises(Unavailable):  # a late subscription of an ended group
        await hub.subscribe(lambda e: True, None, heartbeat_s=60, group="grpc").__anext__()
    await other.aclose()
    assert hub.subscriber_count == 0

"""The client's resumable subscription: exactly the uninterrupted sequence across a server restart,
and `driftd alarms --follow` printing the live stream."""

from __future__ import annotations

import asyncio
import os
import sys
import threading

import grpc

from driftd.client.alarms import Subscription, subscribe_alarms, subscribe_alarms_async
from support import free_port, start_served, stop_served

from .test_alarm_service import flip, make_monitor


async def test_resumes_across_server_restart_without_gap_or_duplicate(tmp_path):
    port = free_port()
    served = await start_served(tmp_path / "data", grpc_port=port)
    monitor = await make_monitor(served)
    for i in range(3):
        await flip(served, monitor, i)
    got: list[int] = []
    state = Subscription(last_sequence=0)
    stop = threading.Event()

    def reader():
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            for event in subscribe_alarms(channel, heartbeat_s=0.1, state=state):
                got.append(event.sequence)
                if stop.is_set() and len(got) >= target[0]:
                    return

    target = [10**9]
    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    await asyncio.sleep(0.5)
    await stop_served(served)  # the subscription breaks mid-stream
    served = await start_served(tmp_path / "data", grpc_port=port)
    try:
        monitor = await asyncio.to_thread(served.server.store.get_monitor, "fraud")
        for i in range(3, 7):
            await flip(served, monitor, i)
        total = served.server.store.alarm_high_water()
        target[0] = total
        stop.set()
        await flip(served, monitor, 7)
        await asyncio.to_thread(thread.join, 20)
        assert not thread.is_alive()
        assert got[:total] == list(range(1, total + 1))
        assert len(got) == len(set(got))
        assert state.reconnects >= 1
    finally:
        await stop_served(served)


async def test_async_variant_and_expired_cursor_raises(tmp_path):
    served = await start_served(tmp_path / "data")
    try:
        monitor = await make_monitor(served)
        for i in range(4):
            await flip(served, monitor, i)
        channel = grpc.aio.insecure_channel(f"127.0.0.1:{served.port}")
        seen = []
        async for event in subscribe_alarms_async(channel, start_after=0, heartbeat_s=0.1):
            seen.append(event.sequence)
            if len(seen) == served.server.store.alarm_high_water():
                break
        assert seen == list(range(1, len(seen) + 1))
        served.server.store.prune_alarm_events(1)
        try:
            async for _ in subscribe_alarms_async(channel, start_after=0):
                raise AssertionError("an expired cursor must not yield")
        except grpc.aio.AioRpcError as exc:
            assert exc.code() == grpc.StatusCode.OUT_OF_RANGE
        await channel.close()
    finally:
        await stop_served(served)


async def test_cli_follow_prints_events(tmp_path):
    served = await start_served(tmp_path / "data")
    try:
        monitor = await make_monitor(served)
        await flip(served, monitor, 0)
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "driftd.server.cli", "alarms", "--target", f"127.0.0.1:{served.port}", "--follow", "--after", "0",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env={**os.environ})
        lines = [(await asyncio.wait_for(proc.stdout.readline(), 30)).decode() for _ in range(3)]
        proc.kill()
        await proc.wait()
        assert lines[0].startswith("#1 ") and "P2 monitors/fraud psi{feature=" in lines[0] and "inactive -> firing" in lines[0]
        assert lines[1].strip().startswith("runbook:")
        listed = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "driftd.server.cli", "alarms", "--target", f"127.0.0.1:{served.port}",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, _ = await asyncio.wait_for(listed.communicate(), 30)
        assert listed.returncode == 0 and "monitors/fraud/alarms/psi.age firing" in out.decode()
    finally:
        await stop_served(served)


def test_live_only_subscription_resumes_from_its_last_heartbeat():
    """No event seen yet: after a heartbeat, a reconnect asks to start after its high-water mark
    (events during the outage are replayed, none lost); before any heartbeat it stays live-only."""
    from driftd.client.alarms import Subscription
    from driftd.v1 import alarm_pb2

    sub = Subscription()
    assert not sub.request([], [], {}, 1.0).HasField("start_after_sequence")
    sub.accept(alarm_pb2.SubscribeAlarmsResponse(heartbeat=alarm_pb2.Heartbeat(high_water_sequence=0)))
    req = sub.request([], [], {}, 1.0)
    assert req.HasField("start_after_sequence") and req.start_after_sequence == 0
    sub.accept(alarm_pb2.SubscribeAlarmsResponse(heartbeat=alarm_pb2.Heartbeat(high_water_sequence=7)))
    assert sub.request([], [], {}, 1.0).start_after_sequence == 7
    assert sub.accept(alarm_pb2.SubscribeAlarmsResponse(event=alarm_pb2.AlarmEvent(sequence=7))) is None  # covered already
    assert sub.accept(alarm_pb2.SubscribeAlarmsResponse(event=alarm_pb2.AlarmEvent(sequence=8))).sequence == 8
    assert sub.request([], [], {}, 1.0).start_after_sequence == 8

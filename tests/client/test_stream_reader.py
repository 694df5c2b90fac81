"""Streams that go bad without ending: a gRPC stream whose iterator never ends after the call is
over (grpcio was seen doing this for a stream opened as the server went away), and an alarm stream
that goes silent. The sender and the alarm subscriptions must still move on."""

from __future__ import annotations

import asyncio
import doctest
from concurrent import futures
import threading
import time

import grpc
import numpy as np
import pytest

from driftd.client import Client, _stream
from driftd.client import client as client_module
from driftd.client import sender as sender_module
from driftd.client import alarms as alarms_module
from driftd.client._stream import StreamReader
from driftd.client.alarms import Subscription, silence_limit, subscribe_alarms, subscribe_alarms_async
from driftd.v1 import alarm_pb2, alarm_pb2_grpc

F = [f"f{k}" for k in range(8)]


class HungCall(grpc.RpcError):
    """What grpcio left behind: status UNAVAILABLE, `cancel()` a no-op, `__next__` blocked for good.
    Like grpc it pulls requests from the request iterator in a thread of its own (here: one)."""

    def __init__(self, requests=None) -> None:
        self.release = threading.Event()  # set at teardown only, to let the parked thread go
        self.pulled: list = []
        self.requests = requests
        if requests is not None:
            threading.Thread(target=self._pull_one, daemon=True).start()

    def _pull_one(self) -> None:
        for request in self.requests:
            self.pulled.append(request)
            return

    def __iter__(self):
        self.release.wait()
        return iter(())

    def done(self) -> bool:
        # over once it has taken a batch (with no requests to take: over from the start)
        return self.requests is None or bool(self.pulled)

    def cancel(self) -> bool:
        return False

    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode.UNAVAILABLE

    def details(self) -> str:
        return "failed to connect to all addresses"

    def trailing_metadata(self):
        return ()


class FirstStreamHangs:
    """An IngestService stub whose first StreamBatches call hangs; later ones go to the real stub."""

    def __init__(self, real) -> None:
        self.real = real
        self.hung: list[HungCall] = []

    def StreamBatches(self, requests, **kwargs):
        if not self.hung:
            self.hung.append(HungCall(requests))
            return self.hung[0]
        return self.real.StreamBatches(requests, **kwargs)


def test_reader_that_never_ends_is_abandoned_after_the_grace():
    call = HungCall()
    try:
        reader = StreamReader(call, lambda m: None, name="test-hung")
        t0 = time.monotonic()
        assert reader.wait(poll_s=0.02, grace_s=0.2) is False
        assert 0.2 <= time.monotonic() - t0 < 2
        assert reader.abandoned and reader.error is call and not reader.finished
    finally:
        call.release.set()


def test_reader_ends_normally_with_messages_and_error():
    class Broken(HungCall):
        def __iter__(self):
            yield "a"
            yield "b"
            raise self

    seen = []
    reader = StreamReader(Broken(), seen.append, name="test-broken")
    assert reader.wait(poll_s=0.02) is True
    assert seen == ["a", "b"] and isinstance(reader.error, Broken) and not reader.abandoned


def test_reader_held_up_by_its_consumer_is_not_abandoned():
    """The call may be over (status received) while messages wait to be read: a reader busy in
    on_message longer than the grace must still get every message, and a clean end is no error."""
    class EndedWithMessages(HungCall):
        def __iter__(self):
            return iter([1, 2, 3])

        def code(self):
            return grpc.StatusCode.OK

    seen = []
    reader = StreamReader(EndedWithMessages(), lambda m: seen.append(m) or time.sleep(0.3), name="test-slow")
    assert reader.wait(poll_s=0.02, grace_s=0.1) is True
    assert seen == [1, 2, 3] and reader.error is None and not reader.abandoned


def test_reader_still_draining_after_the_end_is_not_abandoned():
    """The status can arrive while grpc still hands out buffered messages, each after a short wait
    in __next__: progress between polls keeps the reader, however long the drain takes."""
    class Draining(HungCall):
        def __iter__(self):
            for i in range(8):
                time.sleep(0.05)  # in grpc's __next__, not in on_message
                yield i

        def code(self):
            return grpc.StatusCode.OK

    seen = []
    reader = StreamReader(Draining(), seen.append, name="test-draining")
    assert reader.wait(poll_s=0.02, grace_s=0.1) is True
    assert seen == list(range(8)) and reader.error is None


def test_cancel_when_cancels_a_live_call_once_asked():
    class Live(HungCall):
        cancelled = False

        def done(self):
            return self.cancelled

        def cancel(self):
            self.cancelled = True
            self.release.set()
            return True

    call = Live()
    asked = []
    reader = StreamReader(call, lambda m: None, name="test-live")
    assert reader.wait(poll_s=0.02, cancel_when=lambda: asked.append(1) or len(asked) >= 3) is True
    assert call.cancelled and len(asked) == 3


def test_sender_moves_on_when_its_stream_never_ends(server, monkeypatch):
    """Without the reader thread the sender stayed in `for response in call` for good: flush timed
    out with one batch sent and never acked, reconnects=0 (the flaky CI failure of stop 13)."""
    stubs: list[FirstStreamHangs] = []

    def hanging_stub(channel, real=sender_module.ingest_pb2_grpc.IngestServiceStub):
        stubs.append(FirstStreamHangs(real(channel)))
        return stubs[-1]

    monkeypatch.setattr(sender_module.ingest_pb2_grpc, "IngestServiceStub", hanging_stub)
    client = Client(server.target, linger_s=0.01, ack_timeout_s=60)  # the ack watchdog is not what saves it here
    mon = client.monitor("m")
    try:
        block = np.zeros((500, len(F)), np.float32)
        block[:, 0] = np.arange(500)
        mon.log(block)
        assert mon.flush(timeout=15), mon.stats
        (stub,) = stubs
        assert len(stub.hung) == 1 and len(stub.hung[0].pulled) == 1  # the batch went into the hung stream first
        s = mon.stats
        assert s.streams_abandoned == 1 and s.reconnects == 1 and s.batches_retried == 1
        assert "UNAVAILABLE" in (s.last_error or "")
        got = np.sort(server.state.column("numeric")[:, 0])
        np.testing.assert_array_equal(got, np.arange(500, dtype=np.float32))  # every row once
        # the abandoned reader, should grpc wake it later, is ignored: no backoff reset, no ack handled
        sender = mon._sender
        sender._backoff = 1.5
        late = sender_module.ingest_pb2.StreamBatchesResponse()
        late.ack.sequence = 1
        late.ack.status.code = 8  # RESOURCE_EXHAUSTED: would queue a retry if it were handled
        assert sender._on_response(late, stream=sender._stream_number - 1) is True
        assert sender._backoff == 1.5 and not sender._retry
    finally:
        client.close(timeout=5)
        for stub in stubs:
            for call in stub.hung:
                call.release.set()


class SilentFirst(alarm_pb2_grpc.AlarmServiceServicer):
    """The first subscription is accepted and then hears nothing, no heartbeat either (a connection
    gone dead without saying so); later ones get event 1 and stay open."""

    def __init__(self) -> None:
        self.subscriptions = 0
        self.lock = threading.Lock()

    def SubscribeAlarms(self, request, context):
        with self.lock:
            self.subscriptions += 1
            first = self.subscriptions == 1
        ended = threading.Event()
        context.add_callback(ended.set)
        if not first:
            yield alarm_pb2.SubscribeAlarmsResponse(event=alarm_pb2.AlarmEvent(sequence=1, rule_id="r"))
        ended.wait(30)


@pytest.fixture
def silent_alarms():
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = SilentFirst()
    alarm_pb2_grpc.add_AlarmServiceServicer_to_server(servicer, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield servicer, f"127.0.0.1:{port}"
    server.stop(grace=None).wait()


def test_silent_alarm_stream_is_reopened(silent_alarms):
    servicer, target = silent_alarms
    state = Subscription()
    t0 = time.monotonic()
    with grpc.insecure_channel(target) as channel:
        event = next(subscribe_alarms(channel, heartbeat_s=0.1, state=state))
    waited = time.monotonic() - t0
    assert event.sequence == 1 and servicer.subscriptions == 2 and state.reconnects == 1
    assert silence_limit(0.1) <= waited < silence_limit(0.1) + 5


async def test_silent_alarm_stream_is_reopened_async(silent_alarms):
    servicer, target = silent_alarms
    state = Subscription()
    t0 = time.monotonic()
    async with grpc.aio.insecure_channel(target) as channel:
        events = subscribe_alarms_async(channel, heartbeat_s=0.1, state=state)
        event = await asyncio.wait_for(events.__anext__(), 15)
        await events.aclose()
    waited = time.monotonic() - t0
    assert event.sequence == 1 and servicer.subscriptions == 2 and state.reconnects == 1
    assert silence_limit(0.1) <= waited < silence_limit(0.1) + 5


def test_alarm_subscription_moves_on_when_its_stream_never_ends(silent_alarms, monkeypatch):
    servicer, target = silent_alarms
    servicer.subscriptions = 1  # the real server answers at once
    hung: list[HungCall] = []

    class FirstCallHangs:
        def __init__(self, channel, real=alarm_pb2_grpc.AlarmServiceStub):
            self.real = real(channel)

        def SubscribeAlarms(self, request, **kwargs):
            if not hung:
                hung.append(HungCall())
                return hung[0]
            return self.real.SubscribeAlarms(request, **kwargs)

    monkeypatch.setattr(alarms_module.alarm_pb2_grpc, "AlarmServiceStub", FirstCallHangs)
    state = Subscription()
    try:
        with grpc.insecure_channel(target) as channel:
            # heartbeat_s=60: the silence limit (181 s) is not what reopens it
            event = next(subscribe_alarms(channel, heartbeat_s=60, state=state))
        assert event.sequence == 1 and len(hung) == 1 and state.reconnects == 1
    finally:
        for call in hung:
            call.release.set()


def test_watch_snapshots_raises_when_its_stream_never_ends(server, monkeypatch):
    hung: list[HungCall] = []

    class Hangs:
        def __init__(self, channel):
            """Stands in for SnapshotServiceStub(channel); every call hangs, so the channel is unused."""

        def WatchSnapshots(self, request, **kwargs):
            hung.append(HungCall())
            return hung[-1]

    client = Client(server.target)
    mon = client.monitor("m")
    monkeypatch.setattr(client_module.snapshot_pb2_grpc, "SnapshotServiceStub", Hangs)
    t0 = time.monotonic()
    try:
        with pytest.raises(grpc.RpcError) as raised:
            next(mon.watch_snapshots())
        assert raised.value.code() == grpc.StatusCode.UNAVAILABLE and time.monotonic() - t0 < 5
    finally:
        client.close(timeout=5)
        for call in hung:
            call.release.set()


def test_stream_module_doctests():
    result = doctest.testmod(_stream)
    assert result.attempted >= 2 and result.failed == 0

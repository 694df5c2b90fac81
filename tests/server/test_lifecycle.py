"""Lifecycle.guard_stream: a drain ends a guarded stream with UNAVAILABLE (DRAINING) whether it is
parked waiting for its next item or busy in a yield; any other cancellation is left alone."""

from __future__ import annotations

import asyncio

import grpc
import pytest

from driftd.server.transport.lifecycle import Lifecycle


class Aborted(Exception):
    """What FakeContext.abort raises, as grpc's context.abort does."""


class FakeContext:
    def __init__(self) -> None:
        self.aborted: tuple | None = None

    def cancelled(self) -> bool:
        return False

    def done(self) -> bool:
        return False

    async def abort(self, code, details, trailing_metadata=()):
        self.aborted = (code, details)
        raise Aborted(details)


def source(closed: list, swallow_cancel: bool = False, items=(1, 2)):
    async def gen():
        try:
            for item in items:
                yield item
            while True:  # then park, like a stream waiting for its next request
                try:
                    await asyncio.sleep(3600)
                except asyncio.CancelledError:
                    if not swallow_cancel:
                        raise
                    yield "swallowed"
        finally:
            closed.append(True)
    return gen()


async def consume(lifecycle, stream, context, got, pause_after_first=0.0):
    async for item in lifecycle.guard_stream(stream, context):
        got.append(item)
        if pause_after_first and len(got) == 1:
            await asyncio.sleep(pause_after_first)  # busy in the yield, not waiting for the next item


@pytest.mark.parametrize("swallow_cancel", [False, True])
async def test_drain_ends_a_parked_stream_with_unavailable_and_leaves_the_task_uncancelled(swallow_cancel):
    lifecycle, context, got, closed = Lifecycle(), FakeContext(), [], []
    task = asyncio.create_task(consume(lifecycle, source(closed, swallow_cancel), context, got))
    await asyncio.sleep(0.05)
    assert got == [1, 2] and not task.done()
    await lifecycle.drain()
    with pytest.raises(Aborted):
        await asyncio.wait_for(task, 5)
    assert context.aborted[0] == grpc.StatusCode.UNAVAILABLE and "draining" in context.aborted[1]
    assert closed == [True]
    assert task.cancelling() == 0
    assert not lifecycle._streams


async def test_drain_during_a_yield_ends_the_stream_at_its_next_item():
    lifecycle, context, got, closed = Lifecycle(), FakeContext(), [], []
    task = asyncio.create_task(consume(lifecycle, source(closed), context, got, pause_after_first=0.2))
    await asyncio.sleep(0.05)
    await lifecycle.drain()  # the consumer is in its pause: nothing to cancel
    with pytest.raises(Aborted):
        await asyncio.wait_for(task, 5)
    assert got == [1]  # item 2 was never pulled
    assert context.aborted[0] == grpc.StatusCode.UNAVAILABLE
    assert task.cancelling() == 0 and closed == [True]


async def test_another_cancellation_is_not_turned_into_unavailable():
    lifecycle, context, got, closed = Lifecycle(), FakeContext(), [], []
    task = asyncio.create_task(consume(lifecycle, source(closed), context, got))
    await asyncio.sleep(0.05)
    task.cancel()  # e.g. the client went away
    with pytest.raises(asyncio.CancelledError):
        await task
    assert context.aborted is None and closed == [True] and not lifecycle._streams


async def test_a_stream_that_ends_is_not_aborted_and_a_late_stream_is():
    lifecycle, context, got = Lifecycle(), FakeContext(), []

    async def finite():
        yield "only"

    await consume(lifecycle, finite(), context, got)
    assert got == ["only"] and context.aborted is None
    await lifecycle.drain()
    with pytest.raises(Aborted):
        await consume(lifecycle, finite(), context, got)
    assert got == ["only"]

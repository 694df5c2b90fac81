"""Serving lifecycle: health (with a drain-aware Watch), and ending open streams on shutdown.

On SIGTERM the app calls `Lifecycle.drain()`: health turns NOT_SERVING for every service (so load
balancers stop routing here), every open server stream guarded by `guard_stream` ends with
UNAVAILABLE("server is draining"), and new calls are refused the same way by the interceptor.
"""

from __future__ import annotations

import asyncio
from typing import AsyncIterator, TypeVar

from grpc_health.v1 import health_pb2
from grpc_health.v1._async import HealthServicer

from driftd.server.domain.errors import Unavailable
from driftd.server.transport.errors import abort

T = TypeVar("T")
DRAINING_MESSAGE = "server is draining; reconnect to another replica or retry shortly"


class _GuardedStream:
    """One open server stream under `Lifecycle.guard_stream`: its task, and whether it is parked
    waiting for its next item (only then may a drain cancel it)."""

    __slots__ = ("task", "waiting", "interrupted")

    def __init__(self, task: asyncio.Task) -> None:
        self.task = task
        self.waiting = False
        self.interrupted = False


class Lifecycle:
    def __init__(self) -> None:
        self.draining = asyncio.Event()
        self.health = DrainAwareHealthServicer(self)
        self._streams: set[_GuardedStream] = set()

    @property
    def is_draining(self) -> bool:
        return self.draining.is_set()

    async def set_serving(self, services: list[str]) -> None:
        for name in ["", *services]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def drain(self) -> None:
        await self.health.enter_graceful_shutdown()
        self.draining.set()
        for guarded in list(self._streams):
            if guarded.waiting and not guarded.interrupted:
                guarded.interrupted = True  # guard_stream tells this cancellation from any other
                guarded.task.cancel()
        await self.health.notify()

    async def guard_stream(self, stream: AsyncIterator[T], context) -> AsyncIterator[T]:
        """Yield from `stream` until it ends or the server drains; then end the call with UNAVAILABLE.

        A drain cancels the call's task while it waits for `stream`'s next item (a stream parked in
        `yield` notices the drain when it asks for the next one). Per item this costs two attribute
        writes: racing each item against the drain with a task and `asyncio.wait` cost ~34 us per
        message, a third of what a 256-row ingest batch costs the event loop.
        """
        task = asyncio.current_task()
        assert task is not None
        guarded = _GuardedStream(task)
        self._streams.add(guarded)
        it = stream.__aiter__()
        try:
            while not self.draining.is_set():
                guarded.waiting = True
                try:
                    item = await it.__anext__()
                except StopAsyncIteration:
                    return
                except asyncio.CancelledError:
                    if not guarded.interrupted:
                        raise  # the client went away, or the server stops: not ours to handle
                    break
                finally:
                    guarded.waiting = False
                yield item
        finally:
            self._streams.discard(guarded)
            if guarded.interrupted:
                task.uncancel()  # our cancellation is handled here (also if `stream` swallowed it)
            aclose = getattr(it, "aclose", None)
            if aclose is not None:
                try:
                    await aclose()
                except BaseException:  # noqa: BLE001 - closing a cancelled generator
                    pass
        await abort(context, Unavailable(DRAINING_MESSAGE, reason="DRAINING"))


class DrainAwareHealthServicer(HealthServicer):
    """Standard grpc.health.v1 servicer whose Watch streams end with UNAVAILABLE when draining,
    after sending the NOT_SERVING update."""

    def __init__(self, lifecycle: Lifecycle) -> None:
        super().__init__()
        self._lifecycle = lifecycle
        self._changed = asyncio.Condition()

    async def notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def set(self, service, status) -> None:  # noqa: A003 - grpc's name
        await super().set(service, status)
        await self.notify()

    async def enter_graceful_shutdown(self) -> None:
        await super().enter_graceful_shutdown()
        await self.notify()

    async def Watch(self, request, context):  # noqa: N802 - grpc's name
        last = None
        async with self._changed:
            while True:
                status = self._server_status.get(request.service, health_pb2.HealthCheckResponse.SERVICE_UNKNOWN)
                if status != last:
                    await context.write(health_pb2.HealthCheckResponse(status=status))
                    last = status
                if self._lifecycle.is_draining:
                    break
                await self._changed.wait()
        await abort(context, Unavailable(DRAINING_MESSAGE, reason="DRAINING"))

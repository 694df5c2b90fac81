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


class Lifecycle:
    def __init__(self) -> None:
        self.draining = asyncio.Event()
        self.health = DrainAwareHealthServicer(self)

    @property
    def is_draining(self) -> bool:
        return self.draining.is_set()

    async def set_serving(self, services: list[str]) -> None:
        for name in ["", *services]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)

    async def drain(self) -> None:
        await self.health.enter_graceful_shutdown()
        self.draining.set()
        await self.health.notify()

    async def guard_stream(self, stream: AsyncIterator[T], context) -> AsyncIterator[T]:
        """Yield from `stream` until it ends or the server drains; then end the call with UNAVAILABLE."""
        drained = asyncio.ensure_future(self.draining.wait())
        it = stream.__aiter__()
        nxt: asyncio.Future | None = None
        try:
            while True:
                nxt = asyncio.ensure_future(it.__anext__())
                done, _ = await asyncio.wait({nxt, drained}, return_when=asyncio.FIRST_COMPLETED)
                if nxt not in done:
                    break  # draining
                try:
                    item = nxt.result()
                except StopAsyncIteration:
                    return
                nxt = None
                yield item
        finally:
            drained.cancel()
            if nxt is not None:
                if nxt.done() and not nxt.cancelled():
                    nxt.exception()  # finished at the same moment: retrieve it so asyncio does not warn
                else:
                    nxt.cancel()
                    await asyncio.gather(nxt, return_exceptions=True)
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

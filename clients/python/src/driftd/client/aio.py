"""asyncio variant of the client.

`log()` is the same non-blocking append as the sync client (the background sender thread does the
network work, so the event loop is never blocked); calls that wait (flush, snapshot, create_*)
run in a worker thread; streams (`watch_snapshots`, `subscribe_alarms`) use grpc.aio natively.

    >>> async def main():                                              # doctest: +SKIP
    ...     async with AsyncClient("127.0.0.1:50051") as client:
    ...         monitor = await client.monitor("fraud-v3")
    ...         monitor.log(features={"amount": 12.3}, scores=[0.8])
    ...         await monitor.flush()
    ...         async for event in client.subscribe_alarms(start_after=0):
    ...             print(event.summary)
"""

from __future__ import annotations

import asyncio
from typing import Any, AsyncIterator, Mapping, Sequence

import grpc

from driftd.client.alarms import subscribe_alarms_async
from driftd.client.client import Client, MonitorHandle
from driftd.v1 import alarm_pb2, snapshot_pb2, snapshot_pb2_grpc


class AsyncMonitorHandle:
    def __init__(self, client: "AsyncClient", handle: MonitorHandle) -> None:
        self._client = client
        self._handle = handle
        self.name = handle.name

    def log(self, features: Any = None, **columns: Any) -> bool:
        """Non-blocking, like `MonitorHandle.log`."""
        return self._handle.log(features, **columns)

    @property
    def stats(self):
        return self._handle.stats

    async def flush(self, timeout: float | None = None) -> bool:
        return await asyncio.to_thread(self._handle.flush, timeout)

    async def log_labels(self, request_ids: Sequence[str], labels: Any):
        return await asyncio.to_thread(self._handle.log_labels, request_ids, labels)

    async def snapshot(self) -> snapshot_pb2.Snapshot:
        return await asyncio.to_thread(self._handle.snapshot)

    async def watch_snapshots(self) -> AsyncIterator[snapshot_pb2.Snapshot]:
        call = snapshot_pb2_grpc.SnapshotServiceStub(self._client.aio_channel).WatchSnapshots(
            snapshot_pb2.WatchSnapshotsRequest(parent=self.name), metadata=self._client.sync.metadata)
        try:
            async for response in call:
                yield response.snapshot
        finally:
            call.cancel()


class AsyncClient:
    def __init__(self, target: str = "127.0.0.1:50051", token: str | None = None, **kw: Any) -> None:
        self.sync = Client(target, token, **kw)
        s = self.sync
        self.aio_channel = (grpc.aio.secure_channel(target, s.credentials, s.options) if s.credentials
                            else grpc.aio.insecure_channel(target, s.options))
        self._handles: dict[str, AsyncMonitorHandle] = {}

    async def monitor(self, monitor_id: str) -> AsyncMonitorHandle:
        handle = await asyncio.to_thread(self.sync.monitor, monitor_id)
        return self._handles.setdefault(handle.name, AsyncMonitorHandle(self, handle))

    async def create_monitor(self, monitor_id: str, **kw: Any):
        return await asyncio.to_thread(self.sync.create_monitor, monitor_id, **kw)

    async def create_monitor_from_frame(self, monitor_id: str, data: Any, **kw: Any):
        return await asyncio.to_thread(self.sync.create_monitor_from_frame, monitor_id, data, **kw)

    async def create_baseline(self, monitor_id: str, data: Any = None, **kw: Any):
        return await asyncio.to_thread(self.sync.create_baseline, monitor_id, data, **kw)

    def subscribe_alarms(self, start_after: int | None = None, monitor=None, severity=None,
                         labels: Mapping[str, str] | None = None, heartbeat_s: float = 5.0) -> AsyncIterator[alarm_pb2.AlarmEvent]:
        return subscribe_alarms_async(self.aio_channel, start_after=start_after, monitor=monitor, severity=severity,
                                      labels=dict(labels or {}), heartbeat_s=heartbeat_s, metadata=self.sync.metadata)

    async def close(self) -> None:
        await asyncio.to_thread(self.sync.close)
        await self.aio_channel.close()

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

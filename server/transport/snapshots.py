"""SnapshotService servicer: latest / by id / at a time, paginated list, and a live watch."""

from __future__ import annotations

import asyncio
import json

from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.monitor import parse_monitor_name
from driftd.server.service.runtimes import Runtimes
from driftd.server.store.sqlite import SqliteStore
from driftd.server.transport.codec import from_timestamp
from driftd.server.transport.errors import grpc_errors
from driftd.server.transport.lifecycle import Lifecycle
from driftd.server.transport.monitors import page_size
from driftd.server.transport.snapshot_codec import snapshot_to_proto
from driftd.v1 import snapshot_pb2, snapshot_pb2_grpc


def parse_snapshot_name(name: str, field: str = "name") -> tuple[str, int | None]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "monitors" or parts[2] != "snapshots":
        raise InvalidArgument.one(field, f"expected 'monitors/{{m}}/snapshots/{{snapshot_id}}' or '.../snapshots/latest', got {name!r}")
    monitor_id = parse_monitor_name("/".join(parts[:2]), field)
    if parts[3] == "latest":
        return monitor_id, None
    if not parts[3].isdigit():
        raise InvalidArgument.one(field, f"snapshot id must be a number or 'latest', got {parts[3]!r}")
    return monitor_id, int(parts[3])


def _decode(stored) -> snapshot_pb2.Snapshot:
    return snapshot_to_proto(stored.monitor_id, {**json.loads(stored.payload), "snapshot_id": stored.snapshot_id})


class SnapshotServicer(snapshot_pb2_grpc.SnapshotServiceServicer):
    def __init__(self, store: SqliteStore, runtimes: Runtimes, lifecycle: Lifecycle) -> None:
        self._store = store
        self._runtimes = runtimes
        self._lifecycle = lifecycle

    @grpc_errors
    async def GetSnapshot(self, request, context):
        monitor_id, snapshot_id = parse_snapshot_name(request.name)
        at = from_timestamp(request.at_time) if request.HasField("at_time") else None
        if at is not None and snapshot_id is not None:
            raise InvalidArgument.one("at_time", "at_time only goes with '.../snapshots/latest'")
        await asyncio.to_thread(self._store.get_monitor, monitor_id)
        stored = await asyncio.to_thread(self._store.get_snapshot, monitor_id, snapshot_id, at)
        return snapshot_pb2.GetSnapshotResponse(snapshot=_decode(stored))

    @grpc_errors
    async def ListSnapshots(self, request, context):
        monitor_id = parse_monitor_name(request.parent, "parent")
        size = page_size(request.page_size)
        before = None
        if request.page_token:
            if not request.page_token.isdigit():
                raise InvalidArgument.one("page_token", "not a page token returned by this service")
            before = int(request.page_token)
        await asyncio.to_thread(self._store.get_monitor, monitor_id)
        start = from_timestamp(request.start_time) if request.HasField("start_time") else None
        end = from_timestamp(request.end_time) if request.HasField("end_time") else None
        stored = await asyncio.to_thread(self._store.list_snapshots, monitor_id, before_id=before, limit=size + 1,
                                         start_time=start, end_time=end)
        token = str(stored[size - 1].snapshot_id) if len(stored) > size else ""
        return snapshot_pb2.ListSnapshotsResponse(snapshots=[_decode(s) for s in stored[:size]], next_page_token=token)

    @grpc_errors
    async def WatchSnapshots(self, request, context):
        monitor_id = parse_monitor_name(request.parent, "parent")
        runtime = await self._runtimes.get(monitor_id)

        async def stream():
            queue = runtime.watch()
            try:
                while True:
                    snapshot = await queue.get()
                    if snapshot is None:  # the runtime was rebuilt (new baseline) or stopped
                        return
                    yield snapshot_pb2.WatchSnapshotsResponse(snapshot=snapshot_to_proto(monitor_id, snapshot))
            finally:
                runtime.unwatch(queue)

        async for response in self._lifecycle.guard_stream(stream(), context):
            yield response

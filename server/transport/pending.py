"""Servicers for capabilities not built yet. Every RPC answers UNIMPLEMENTED with a message that
names the missing capability (ErrorInfo reason UNIMPLEMENTED, metadata `capability`) — never a fake
success. Each entry disappears from PENDING_CAPABILITIES when its real servicer lands."""

from __future__ import annotations

from driftd.server.domain.errors import Unimplemented
from driftd.server.transport.errors import abort
from driftd.v1 import baseline_pb2, baseline_pb2_grpc, ingest_pb2, ingest_pb2_grpc, snapshot_pb2, snapshot_pb2_grpc

# service full name -> (generated servicer base, generated add_* function, capability text)
PENDING_CAPABILITIES = {
    "driftd.v1.BaselineService": (
        baseline_pb2, baseline_pb2_grpc.BaselineServiceServicer, baseline_pb2_grpc.add_BaselineServiceServicer_to_server,
        "baselines over gRPC (create from streamed reference batches, get, list, activate)",
    ),
    "driftd.v1.IngestService": (
        ingest_pb2, ingest_pb2_grpc.IngestServiceServicer, ingest_pb2_grpc.add_IngestServiceServicer_to_server,
        "streaming ingest (StreamBatches, WriteBatch, WriteLabels)",
    ),
    "driftd.v1.SnapshotService": (
        snapshot_pb2, snapshot_pb2_grpc.SnapshotServiceServicer, snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server,
        "drift snapshots (GetSnapshot, ListSnapshots, WatchSnapshots)",
    ),
}


def pending_servicer(service_name: str):
    """An instance of the generated servicer whose every method aborts UNIMPLEMENTED(capability)."""
    module, base, _, capability = PENDING_CAPABILITIES[service_name]
    service = module.DESCRIPTOR.services_by_name[service_name.rsplit(".", 1)[1]]
    methods = {}
    for method in service.methods:
        rpc = f"{method.name} ({capability})"
        if method.server_streaming:
            async def handler(self, request, context, _rpc=rpc):
                await abort(context, Unimplemented(_rpc))
                yield  # pragma: no cover - abort raises first; this makes a server-streaming handler
        else:
            async def handler(self, request, context, _rpc=rpc):
                await abort(context, Unimplemented(_rpc))
        methods[method.name] = handler
    return type(f"Pending{service.name}", (base,), methods)()


def add_pending_servicers(server, services: list[str]) -> None:
    for name in services:
        PENDING_CAPABILITIES[name][2](pending_servicer(name), server)

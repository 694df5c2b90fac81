"""An in-process fake driftd (sync gRPC, 127.0.0.1, port 0) for the client tests.

It speaks the v1 protocol (Monitor / Ingest / Baseline / Snapshot services), decodes every batch
it receives, applies it with set-based dedupe on (producer_id, sequence) exactly like the real
server's contract, and records everything. Faults are injected through `FakeState`:

* `exhaust_next`  - answer the next N batches with RESOURCE_EXHAUSTED + RetryInfo(`retry_delay_s`)
                    (not applied);
* `abort_after`   - list of counts: after applying that many batches on a stream, abort the stream
                    with UNAVAILABLE *before* acking the last one (it was applied: its resend must be
                    deduplicated);
* `ack_delay_s`   - sleep before each ack;
* `reject_next`   - answer the next N batches with INVALID_ARGUMENT + BadRequest (permanent);
* `stall_once_s`  - hold the next ack that long (a peer that stopped answering), once;
* `refuse_streams` - end every new StreamBatches at once with UNAVAILABLE + RetryInfo(100 ms);
* `ingest_token`  - when set, StreamBatches requires `authorization: Bearer <token>`.

The state lives outside the gRPC server, so a test can stop the server ("down") and start a new
one on the same port with the same state.
"""

from __future__ import annotations

import threading
import time
from concurrent import futures
from dataclasses import dataclass, field

import grpc
import numpy as np
from google.protobuf import any_pb2
from google.rpc import code_pb2, error_details_pb2, status_pb2
from grpc_status import rpc_status

from driftd.v1 import (
    baseline_pb2,
    baseline_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    monitor_pb2,
    monitor_pb2_grpc,
    snapshot_pb2,
    snapshot_pb2_grpc,
    tensor_pb2,
)

_NP = {
    tensor_pb2.DATA_TYPE_FLOAT32: "<f4", tensor_pb2.DATA_TYPE_FLOAT64: "<f8", tensor_pb2.DATA_TYPE_FLOAT16: "<f2",
    tensor_pb2.DATA_TYPE_INT32: "<i4", tensor_pb2.DATA_TYPE_INT64: "<i8", tensor_pb2.DATA_TYPE_UINT8: "u1",
    tensor_pb2.DATA_TYPE_BOOL: "?",
}


def decode(t: tensor_pb2.Tensor) -> np.ndarray:
    return np.frombuffer(t.data, _NP[t.dtype]).reshape(tuple(t.shape))


def _detail(msg) -> any_pb2.Any:
    a = any_pb2.Any()
    a.Pack(msg)
    return a


@dataclass
class Applied:
    producer_id: str
    sequence: int
    rows: int
    arrays: dict
    request_ids: list[str]


@dataclass
class FakeState:
    monitors: dict[str, monitor_pb2.Monitor] = field(default_factory=dict)
    applied: list[Applied] = field(default_factory=list)
    seen: dict[str, set[int]] = field(default_factory=dict)
    received: list[tuple[str, int, int]] = field(default_factory=list)  # (producer, sequence, serialized bytes)
    receive_times: dict[tuple[str, int], list[float]] = field(default_factory=dict)
    duplicates: int = 0
    streams: int = 0
    metadata: list[dict] = field(default_factory=list)
    labels: list[tuple[list[str], np.ndarray]] = field(default_factory=list)
    baselines: list[tuple[baseline_pb2.BaselineHeader, list[dict]]] = field(default_factory=list)
    exhaust_next: int = 0
    retry_delay_s: float = 0.05
    abort_after: list[int] = field(default_factory=list)
    ack_delay_s: float = 0.0
    reject_next: int = 0
    ingest_token: str | None = None
    refuse_streams: bool = False
    stall_once_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def applied_rows(self) -> int:
        with self.lock:
            return sum(a.rows for a in self.applied)

    def column(self, key: str) -> np.ndarray:
        with self.lock:
            return np.concatenate([a.arrays[key] for a in self.applied if key in a.arrays])


def _validate(batch: ingest_pb2.Batch, monitor: monitor_pb2.Monitor | None) -> tuple[list[tuple[str, str]], dict, int]:
    if monitor is None:
        return [("batch.monitor", "not found")], {}, 0
    s = monitor.schema
    arrays: dict = {}
    bad: list[tuple[str, str]] = []
    groups = [("numeric", len(s.numeric_features)), ("categorical", len(s.categorical_features)), ("scores", len(s.score_outputs))]
    n = None
    for key, width in groups:
        if width:
            if not batch.HasField(key):
                bad.append((f"batch.{key}", "missing"))
                continue
            a = decode(getattr(batch, key))
            if a.ndim != 2 or a.shape[1] != width:
                bad.append((f"batch.{key}", f"shape {list(a.shape)}, want [N, {width}]"))
            arrays[key] = a
    for block in s.embedding_blocks:
        if block.name not in batch.embeddings:
            bad.append((f"batch.embeddings[{block.name}]", "missing"))
            continue
        a = decode(batch.embeddings[block.name])
        if a.ndim != 2 or a.shape[1] != block.dim:
            bad.append((f"batch.embeddings[{block.name}]", f"shape {list(a.shape)}"))
        arrays[f"emb:{block.name}"] = a
    for key in ("latency_ms", "status_codes"):
        if batch.HasField(key):
            arrays[key] = decode(getattr(batch, key))
    lengths = {a.shape[0] for a in arrays.values()}
    if batch.request_ids:
        lengths.add(len(batch.request_ids))
    if len(lengths) > 1:
        bad.append(("batch", f"row counts differ: {sorted(lengths)}"))
    n = lengths.pop() if len(lengths) == 1 else 0
    return bad, arrays, n


class _Monitors(monitor_pb2_grpc.MonitorServiceServicer):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def GetMonitor(self, request, context):
        mon = self.state.monitors.get(request.name)
        if mon is None:
            context.abort(grpc.StatusCode.NOT_FOUND, f"monitor {request.name} not found")
        return monitor_pb2.GetMonitorResponse(monitor=mon)

    def CreateMonitor(self, request, context):
        name = f"monitors/{request.monitor_id}"
        if name in self.state.monitors:
            context.abort(grpc.StatusCode.ALREADY_EXISTS, name)
        mon = monitor_pb2.Monitor()
        mon.CopyFrom(request.monitor)
        mon.name = name
        self.state.monitors[name] = mon
        return monitor_pb2.CreateMonitorResponse(monitor=mon)


class _Ingest(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def StreamBatches(self, request_iterator, context):
        st = self.state
        md = dict(context.invocation_metadata())
        with st.lock:
            st.streams += 1
            st.metadata.append(md)
        if st.ingest_token is not None and md.get("authorization") != f"Bearer {st.ingest_token}":
            context.abort(grpc.StatusCode.UNAUTHENTICATED, "bad token")
        if st.refuse_streams:
            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="server is draining")
            info = error_details_pb2.RetryInfo()
            info.retry_delay.FromMilliseconds(100)
            status.details.append(_detail(info))
            context.abort_with_status(rpc_status.to_status(status))
        applied_here = 0
        for req in request_iterator:
            b = req.batch
            ack = ingest_pb2.BatchAck(producer_id=b.producer_id, sequence=b.sequence)
            with st.lock:
                st.received.append((b.producer_id, b.sequence, req.ByteSize()))
                st.receive_times.setdefault((b.producer_id, b.sequence), []).append(time.monotonic())
                if st.exhaust_next > 0:
                    st.exhaust_next -= 1
                    status = status_pb2.Status(code=code_pb2.RESOURCE_EXHAUSTED, message="queue full")
                    info = error_details_pb2.RetryInfo()
                    info.retry_delay.FromNanoseconds(int(st.retry_delay_s * 1e9))
                    status.details.append(_detail(info))
                    ack.status.CopyFrom(status)
                elif st.reject_next > 0:
                    st.reject_next -= 1
                    bad = error_details_pb2.BadRequest()
                    bad.field_violations.add(field="batch.numeric", description="injected rejection")
                    ack.status.CopyFrom(status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message="bad batch",
                                                          details=[_detail(bad)]))
                else:
                    bad, arrays, n = _validate(b, st.monitors.get(b.monitor))
                    if b.sequence == 0:
                        bad.append(("batch.sequence", "0"))
                    if bad:
                        req_bad = error_details_pb2.BadRequest()
                        for f, d in bad:
                            req_bad.field_violations.add(field=f, description=d)
                        ack.status.CopyFrom(status_pb2.Status(code=code_pb2.INVALID_ARGUMENT, message=bad[0][1],
                                                              details=[_detail(req_bad)]))
                        ack.rejected_rows = n
                    elif b.sequence in st.seen.setdefault(b.producer_id, set()):
                        st.duplicates += 1
                        ack.duplicate = True
                    else:
                        st.seen[b.producer_id].add(b.sequence)
                        st.applied.append(Applied(b.producer_id, b.sequence, n, arrays, list(b.request_ids)))
                        ack.accepted_rows = n
                        applied_here += 1
                        if st.abort_after and applied_here >= st.abort_after[0]:
                            st.abort_after.pop(0)
                            abort = True
                        else:
                            abort = False
                        if abort:
                            status = status_pb2.Status(code=code_pb2.UNAVAILABLE, message="server is draining")
                            info = error_details_pb2.RetryInfo()
                            info.retry_delay.FromMilliseconds(20)
                            status.details.append(_detail(info))
                            context.abort_with_status(rpc_status.to_status(status))
            stall, st.stall_once_s = st.stall_once_s, 0.0
            if stall or st.ack_delay_s:
                time.sleep(stall or st.ack_delay_s)
            yield ingest_pb2.StreamBatchesResponse(ack=ack)

    def WriteLabels(self, request, context):
        labels = decode(request.labels)
        with self.state.lock:
            self.state.labels.append((list(request.request_ids), labels))
            known = {r for a in self.state.applied for r in a.request_ids}
        matched = sum(r in known for r in request.request_ids)
        return ingest_pb2.WriteLabelsResponse(matched=matched, unmatched=len(request.request_ids) - matched)


class _Baselines(baseline_pb2_grpc.BaselineServiceServicer):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def CreateBaseline(self, request_iterator, context):
        first = next(request_iterator)
        if not first.HasField("header"):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, "first message must be the header")
        batches = []
        for req in request_iterator:
            if not req.HasField("batch"):
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, "header twice")
            bad, arrays, n = _validate(req.batch, self.state.monitors.get(first.header.parent))
            if bad:
                context.abort(grpc.StatusCode.INVALID_ARGUMENT, str(bad))
            batches.append(arrays)
        self.state.baselines.append((first.header, batches))
        rows = sum(next(iter(a.values())).shape[0] for a in batches if a)
        return baseline_pb2.CreateBaselineResponse(baseline=baseline_pb2.Baseline(
            name=f"{first.header.parent}/baselines/{first.header.baseline_id or 'b1'}", row_count=rows,
            active=first.header.activate, git_commit=first.header.git_commit, source=first.header.source))


class _Snapshots(snapshot_pb2_grpc.SnapshotServiceServicer):
    def __init__(self, state: FakeState) -> None:
        self.state = state

    def _snap(self, monitor: str, k: int) -> snapshot_pb2.Snapshot:
        return snapshot_pb2.Snapshot(name=f"{monitor}/snapshots/{k}", row_count=self.state.applied_rows(),
                                     verdict=snapshot_pb2.VERDICT_OK)

    def GetSnapshot(self, request, context):
        monitor, _, rest = request.name.partition("/snapshots/")
        if monitor not in self.state.monitors or rest != "latest":
            context.abort(grpc.StatusCode.NOT_FOUND, request.name)
        return snapshot_pb2.GetSnapshotResponse(snapshot=self._snap(monitor, 0))

    def WatchSnapshots(self, request, context):
        for k in range(1, 4):
            time.sleep(0.01)
            yield snapshot_pb2.WatchSnapshotsResponse(snapshot=self._snap(request.parent, k))


class FakeServer:
    """`FakeServer(state).start()`; `.stop()` then `.start()` again to come back on the same port."""

    def __init__(self, state: FakeState | None = None, port: int = 0) -> None:
        self.state = state or FakeState()
        self.port = port
        self._server: grpc.Server | None = None

    @property
    def target(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> "FakeServer":
        server = grpc.server(futures.ThreadPoolExecutor(max_workers=8),
                             options=[("grpc.max_receive_message_length", 64 << 20), ("grpc.so_reuseport", 0)])
        monitor_pb2_grpc.add_MonitorServiceServicer_to_server(_Monitors(self.state), server)
        ingest_pb2_grpc.add_IngestServiceServicer_to_server(_Ingest(self.state), server)
        baseline_pb2_grpc.add_BaselineServiceServicer_to_server(_Baselines(self.state), server)
        snapshot_pb2_grpc.add_SnapshotServiceServicer_to_server(_Snapshots(self.state), server)
        wanted = self.port
        bound = server.add_insecure_port(f"127.0.0.1:{wanted}")
        if bound == 0 or (wanted and bound != wanted):
            raise OSError(f"fake server could not bind 127.0.0.1:{wanted}")
        self.port = bound
        server.start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop(grace=None).wait()
            self._server = None

    def add_monitor(self, monitor_id: str, *, numeric=(), categorical=None, embeddings=None, scores=()) -> monitor_pb2.Monitor:
        mon = monitor_pb2.Monitor(name=f"monitors/{monitor_id}")
        for n in numeric:
            mon.schema.numeric_features.add(name=n)
        for n, cats in (categorical or {}).items():
            mon.schema.categorical_features.add(name=n, categories=list(cats))
        for n, d in (embeddings or {}).items():
            mon.schema.embedding_blocks.add(name=n, dim=d)
        for n in scores:
            mon.schema.score_outputs.add(name=n, kind=monitor_pb2.SCORE_KIND_PROBABILITY)
        self.state.monitors[mon.name] = mon
        return mon

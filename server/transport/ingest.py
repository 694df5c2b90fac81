"""IngestService servicer: decode, validate, hand to the monitor's runtime, ack. Thin.

Per-batch problems (bad tensor, unknown monitor, no baseline, full queue) are reported in that
batch's `BatchAck.status`; the stream stays open for the next batch. Only stream-level conditions
(draining, auth, transport limits) end the call.

Order of checks per batch (the first failing one is reported): the tensors' own bytes (dtype,
shape vs bytes) and the batch size limit, then the monitor name and the monitor (NOT_FOUND, or
FAILED_PRECONDITION without an active baseline), then the monitor's schema and row counts.
"""

from __future__ import annotations

import time

from driftd.server.domain.errors import DriftdError, InvalidArgument
from driftd.server.domain.monitor import parse_monitor_name
from driftd.server.metrics import ServiceMetrics
from driftd.server.service.runtimes import Runtimes
from driftd.server.transport.batch_codec import check_batch, decode_tensors
from driftd.server.transport.codec import decode_tensor
from driftd.server.transport.errors import OK_STATUS, grpc_errors, to_rpc_status
from driftd.server.transport.lifecycle import Lifecycle
from driftd.v1 import ingest_pb2, ingest_pb2_grpc


def _claimed_rows(batch: ingest_pb2.Batch) -> int:
    """Rows a rejected batch claimed to carry (for the ack's rejected_rows), from any tensor's shape."""
    for t in (batch.numeric, batch.categorical, batch.scores, batch.latency_ms, batch.status_codes, *batch.embeddings.values()):
        if t.shape:
            return max(int(t.shape[0]), 0)
    return len(batch.request_ids)


class IngestServicer(ingest_pb2_grpc.IngestServiceServicer):
    def __init__(self, runtimes: Runtimes, lifecycle: Lifecycle, max_batch_bytes: int, metrics: ServiceMetrics | None = None) -> None:
        self._runtimes = runtimes
        self._metrics = metrics
        self._lifecycle = lifecycle
        self._max_batch_bytes = max_batch_bytes
        # (monitor label, outcome) -> (rows, batches) counter children: labels() costs ~7 us a call
        self._series: dict[tuple[str, str], tuple] = {}

    async def apply(self, batch: ingest_pb2.Batch, prefix: str = "batch") -> ingest_pb2.BatchAck:
        started = time.perf_counter()
        ack = await self._apply(batch, prefix)
        if self._metrics is not None:
            self._metrics.ingest_batch_seconds.observe(time.perf_counter() - started)
        return ack

    async def _apply(self, batch: ingest_pb2.Batch, prefix: str) -> ingest_pb2.BatchAck:
        ack = ingest_pb2.BatchAck(producer_id=batch.producer_id, sequence=batch.sequence)
        try:
            rows, size = decode_tensors(batch, prefix)  # zero-copy views; schema checks below
            if size > self._max_batch_bytes:
                raise InvalidArgument.one(prefix, f"batch is {size} bytes; the limit is {self._max_batch_bytes} (max_batch_mb): split it")
            monitor_id = parse_monitor_name(batch.monitor, f"{prefix}.monitor")
            runtime = self._runtimes.cached(monitor_id) or await self._runtimes.get(monitor_id)
            check_batch(rows, runtime.monitor.spec.schema, prefix)
            offer = runtime.offer(batch.producer_id, batch.sequence, rows)
        except DriftdError as exc:
            ack.rejected_rows = _claimed_rows(batch)
            ack.status.CopyFrom(to_rpc_status(exc))
            self._count(batch.monitor, "rejected", ack.rejected_rows)
            return ack
        ack.duplicate = offer.duplicate
        ack.accepted_rows = 0 if offer.duplicate else rows.n_rows
        ack.status.CopyFrom(OK_STATUS)
        self._count(batch.monitor, "duplicate" if offer.duplicate else "accepted", rows.n_rows)
        return ack

    def _count(self, monitor: str, outcome: str, rows: int) -> None:
        if self._metrics is None:
            return
        # label values only for monitors that exist (bounded cardinality): unknown names count as "-"
        monitor_id = monitor.removeprefix("monitors/") if self._runtimes.cached(monitor.removeprefix("monitors/")) else "-"
        series = self._series.get((monitor_id, outcome))
        if series is None:
            series = self._series[monitor_id, outcome] = (self._metrics.ingest_rows.labels(monitor_id, outcome),
                                                          self._metrics.ingest_batches.labels(monitor_id, outcome))
        series[0].inc(rows)
        series[1].inc()

    @grpc_errors
    async def StreamBatches(self, request_iterator, context):
        async def acks():
            async for request in request_iterator:
                yield ingest_pb2.StreamBatchesResponse(ack=await self.apply(request.batch))

        async for response in self._lifecycle.guard_stream(acks(), context):
            yield response

    @grpc_errors
    async def WriteBatch(self, request, context):
        return ingest_pb2.WriteBatchResponse(ack=await self.apply(request.batch))

    @grpc_errors
    async def WriteLabels(self, request, context):
        runtime = await self._runtimes.get(parse_monitor_name(request.monitor, "monitor"))
        labels = decode_tensor(request.labels, "labels", rank=1)
        if len(request.request_ids) != labels.shape[0]:
            raise InvalidArgument.one("request_ids", f"{len(request.request_ids)} request ids for {labels.shape[0]} labels")
        if labels.shape[0] == 0:
            raise InvalidArgument.one("labels", "no labels")
        joined = await runtime.write_labels(list(request.request_ids), labels)
        return ingest_pb2.WriteLabelsResponse(matched=joined.matched, unmatched=joined.unmatched, duplicates=joined.duplicates)

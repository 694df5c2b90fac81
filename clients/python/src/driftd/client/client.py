"""The synchronous driftd client.

    >>> from driftd.client import Client
    >>> with Client("127.0.0.1:50051") as client:                       # doctest: +SKIP
    ...     monitor = client.monitor("fraud-v3")
    ...     monitor.log(features={"amount": 12.3, "country": "de"}, scores=[0.81], latency_ms=14.2)
    ...     print(monitor.snapshot().verdict)
"""

from __future__ import annotations

import contextlib
import os
import socket
import uuid
from typing import Any, Iterator, Mapping, Sequence

import grpc
import numpy as np

from driftd.client._rows import ClientSchema, LogItem, assemble
from driftd.client._stream import responses
from driftd.client.wire import fill_tensor, tensor
from driftd.client.alarms import subscribe_alarms
from driftd.client.sender import BatchSender, SenderStats
from driftd.v1 import (
    alarm_pb2,
    baseline_pb2,
    baseline_pb2_grpc,
    ingest_pb2,
    ingest_pb2_grpc,
    monitor_pb2,
    monitor_pb2_grpc,
    snapshot_pb2,
    snapshot_pb2_grpc,
)

KiB, MiB = 1024, 1024 * 1024


def _monitor_name(monitor_id: str) -> str:
    return monitor_id if monitor_id.startswith("monitors/") else f"monitors/{monitor_id}"


def default_producer_id() -> str:
    """Unique per process and client: host, pid and a random suffix."""
    return f"{socket.gethostname()}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class MonitorHandle:
    """Logging, labels and snapshots of one monitor. Create with `Client.monitor(...)`."""

    def __init__(self, client: "Client", monitor: monitor_pb2.Monitor) -> None:
        self._client = client
        self.name = monitor.name
        self.monitor = monitor
        self.schema = ClientSchema.from_proto(monitor)
        self._sender = BatchSender(client.channel, monitor.name, self.schema, client.producer_id, metadata=client.metadata,
                                   buffer_rows=client.buffer_rows, min_batch_bytes=client.min_batch_bytes,
                                   max_batch_bytes=client.max_batch_bytes, linger_s=client.linger_s, max_unacked=client.max_unacked,
                                   ack_timeout_s=client.ack_timeout_s)

    def log(self, features: Any = None, *, embeddings: Mapping[str, Any] | None = None, scores: Any = None,
            latency_ms: Any = None, status_codes: Any = None, request_ids: Any = None) -> bool:
        """Queue one row (`features` a dict of scalars) or a block of rows (dict of arrays, DataFrame,
        or a [N, n_numeric] array). Never blocks; returns False when the buffer was full and the rows
        were dropped (counted in `stats.rows_dropped`).

        Only cheap checks run here and raise ValueError at once: unknown feature names, a missing
        embedding block or scores the schema requires, an embedding of the wrong dim, columns with
        different row counts. Conversion to columns happens in the sender thread, many rows at once.
        Missing numeric values become NaN, missing categorical values code -1; a categorical name
        outside the schema's categories becomes code len(categories) (counted as unseen).

            >>> monitor.log(features={"amount": 12.3, "country": "de"}, scores=[0.81],   # doctest: +SKIP
            ...             latency_ms=14.2, status_codes=200, request_ids="req-1")
            True
            >>> monitor.log(df[["amount", "country"]], scores=df[["p"]].to_numpy())       # doctest: +SKIP
            True
        """
        item = LogItem.build(self.schema, features, embeddings, scores, latency_ms, status_codes, request_ids)
        return self._sender.enqueue(item)

    def flush(self, timeout: float | None = None) -> bool:
        """Block until everything logged before this call is acknowledged (or rejected: see
        `stats.rows_rejected`); False on timeout. Raises RuntimeError when the server refused the
        stream for good (UNAUTHENTICATED / PERMISSION_DENIED)."""
        return self._sender.flush(timeout)

    @property
    def stats(self) -> SenderStats:
        """Live counters: rows_logged, rows_sent, rows_acked, rows_rejected, rows_dropped,
        batches_sent, batches_retried, duplicates, reconnects, streams_abandoned, last_error."""
        return self._sender.stats

    def log_labels(self, request_ids: Sequence[str], labels: Any, timeout: float = 30.0) -> ingest_pb2.WriteLabelsResponse:
        """Send delayed ground truth; rows join by request id. Flushes first so the rows are there."""
        self.flush(timeout)
        return ingest_pb2_grpc.IngestServiceStub(self._client.channel).WriteLabels(
            ingest_pb2.WriteLabelsRequest(monitor=self.name, request_ids=[str(r) for r in request_ids],
                                          labels=tensor(np.asarray(labels, np.float32))),
            metadata=self._client.metadata, timeout=timeout)

    def snapshot(self, timeout: float = 30.0) -> snapshot_pb2.Snapshot:
        """The latest snapshot."""
        return snapshot_pb2_grpc.SnapshotServiceStub(self._client.channel).GetSnapshot(
            snapshot_pb2.GetSnapshotRequest(name=f"{self.name}/snapshots/latest"), metadata=self._client.metadata, timeout=timeout).snapshot

    def watch_snapshots(self) -> Iterator[snapshot_pb2.Snapshot]:
        """A snapshot each evaluation, until the caller stops iterating."""
        call = snapshot_pb2_grpc.SnapshotServiceStub(self._client.channel).WatchSnapshots(
            snapshot_pb2.WatchSnapshotsRequest(parent=self.name), metadata=self._client.metadata)
        # a snapshot can be large (every column's statistics): read at most a few ahead of the caller
        with contextlib.closing(responses(call, name=f"driftd-snapshots-{self.name}", max_buffered=4)) as stream:
            for response in stream:
                yield response.snapshot

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush (up to `timeout`), then stop the sender; rows still unacknowledged are counted as dropped."""
        return self._sender.close(timeout)


class Client:
    """A connection to driftd. Thread-safe; one per process is enough.

    Batching knobs: messages of `min_batch_bytes`..`max_batch_bytes` (256 KiB – 4 MiB by default:
    the range that amortises per-message cost), or whatever arrived within `linger_s`; at most
    `buffer_rows` rows wait per monitor (more are dropped and counted), at most `max_unacked`
    batches are in flight; a stream that leaves a batch unanswered for `ack_timeout_s` is abandoned
    and everything unacknowledged is resent on a new one (a dead peer does not always reset the connection).

    `token` is sent as `authorization: Bearer <token>`; `tls=True` uses the system roots, or pass
    `credentials` (e.g. `grpc.ssl_channel_credentials(root, key, cert)` for mTLS). `producer_id`
    names this process for exactly-once dedupe (default: host-pid-random; every monitor handle of
    the client numbers its batches 1, 2, 3, ...). Works against any server speaking driftd v1.

        >>> with Client("driftd.internal:50051", token="...", tls=True) as client:   # doctest: +SKIP
        ...     client.monitor("fraud-v3").log(features={"amount": 1.0}, scores=[0.2])
    """

    def __init__(self, target: str = "127.0.0.1:50051", token: str | None = None, *, producer_id: str | None = None,
                 tls: bool = False, credentials: grpc.ChannelCredentials | None = None, buffer_rows: int = 1_000_000,
                 min_batch_bytes: int = 256 * KiB, max_batch_bytes: int = 4 * MiB, linger_s: float = 0.2,
                 max_unacked: int = 64, ack_timeout_s: float = 30.0, options: Sequence[tuple[str, Any]] = ()) -> None:
        opts = [("grpc.max_send_message_length", 64 * MiB), ("grpc.max_receive_message_length", 64 * MiB),
                # gRPC's own reconnect backoff grows to 120 s: a restarted server would wait that long
                # for rows; cap it at the sender's 5 s. A client-local subchannel pool keeps another
                # channel's backoff state (same address) from delaying this one.
                ("grpc.initial_reconnect_backoff_ms", 100), ("grpc.min_reconnect_backoff_ms", 100),
                ("grpc.max_reconnect_backoff_ms", 5000), ("grpc.use_local_subchannel_pool", 1), *options]
        if credentials is None and tls:
            credentials = grpc.ssl_channel_credentials()  # system roots
        self.target, self.credentials, self.options = target, credentials, opts
        self.channel = grpc.secure_channel(target, credentials, opts) if credentials else grpc.insecure_channel(target, opts)
        self.metadata = [("authorization", f"Bearer {token}")] if token else None
        self.producer_id = producer_id or default_producer_id()
        self.buffer_rows, self.min_batch_bytes, self.max_batch_bytes = buffer_rows, min_batch_bytes, max_batch_bytes
        self.linger_s, self.max_unacked, self.ack_timeout_s = linger_s, max_unacked, ack_timeout_s
        self._monitors: dict[str, MonitorHandle] = {}

    # -- monitors and baselines ----------------------------------------------------------------

    def monitor(self, monitor_id: str) -> MonitorHandle:
        name = _monitor_name(monitor_id)
        if name not in self._monitors:
            proto = monitor_pb2_grpc.MonitorServiceStub(self.channel).GetMonitor(
                monitor_pb2.GetMonitorRequest(name=name), metadata=self.metadata, timeout=30).monitor
            self._monitors[name] = MonitorHandle(self, proto)
        return self._monitors[name]

    def create_monitor(self, monitor_id: str, *, numeric: Sequence[str] = (), categorical: Mapping[str, Sequence[str]] | None = None,
                       embeddings: Mapping[str, int] | None = None, scores: Sequence[str] = (), model_id: str = "",
                       model_version: str = "", lane: str = "", pane_seconds: float | None = None, pane_count: int | None = None,
                       valid_ranges: Mapping[str, tuple[float | None, float | None]] | None = None,
                       rules: Sequence[monitor_pb2.AlarmRule] = ()) -> monitor_pb2.Monitor:
        """Create a monitor; without `rules` the server installs its default rule pack."""
        mon = monitor_pb2.Monitor(model_id=model_id, model_version=model_version, lane=lane)
        for name in numeric:
            f = mon.schema.numeric_features.add(name=name)
            lo, hi = (valid_ranges or {}).get(name, (None, None))
            if lo is not None:
                f.valid_min = lo
            if hi is not None:
                f.valid_max = hi
        for name, cats in (categorical or {}).items():
            mon.schema.categorical_features.add(name=name, categories=[str(c) for c in cats])
        for name, dim in (embeddings or {}).items():
            mon.schema.embedding_blocks.add(name=name, dim=int(dim))
        for name in scores:
            mon.schema.score_outputs.add(name=name, kind=monitor_pb2.SCORE_KIND_PROBABILITY)
        if pane_seconds is not None:
            mon.window.pane_duration.FromMilliseconds(int(pane_seconds * 1000))
        if pane_count is not None:
            mon.window.pane_count = pane_count
        mon.rules.extend(rules)
        return monitor_pb2_grpc.MonitorServiceStub(self.channel).CreateMonitor(
            monitor_pb2.CreateMonitorRequest(monitor_id=monitor_id, monitor=mon), metadata=self.metadata, timeout=30).monitor

    def create_monitor_from_frame(self, monitor_id: str, data: Any, *, scores: Sequence[str] = (),
                                  embeddings: Mapping[str, Any] | None = None, max_categories: int = 1000, **kw) -> monitor_pb2.Monitor:
        """Infer the schema from a DataFrame or dict of columns: float columns -> numeric, integer /
        string / categorical columns -> categorical (their distinct values become the categories),
        names in `scores` -> score outputs, `embeddings` {block: [N, dim]} -> embedding blocks."""
        from driftd.client._rows import _table

        table = _table(data)
        numeric, categorical = [], {}
        for name, values in table.items():
            if name in scores:
                continue
            arr = np.asarray(values)
            if arr.dtype.kind == "f":
                numeric.append(name)
            else:
                cats = [str(c) for c in np.unique(arr[arr != None].astype(str))]  # noqa: E711 - elementwise
                if len(cats) > max_categories:
                    raise ValueError(f"column {name!r} has {len(cats)} distinct values (> {max_categories}); pass it as numeric")
                categorical[name] = cats
        dims = {k: int(np.shape(v)[1]) for k, v in (embeddings or {}).items()}
        return self.create_monitor(monitor_id, numeric=numeric, categorical=categorical, embeddings=dims, scores=list(scores), **kw)

    def create_baseline(self, monitor_id: str, data: Any = None, *, embeddings: Mapping[str, Any] | None = None, scores: Any = None,
                        activate: bool = True, baseline_id: str = "", model_id: str = "", git_commit: str = "", source: str = "",
                        seed: int = 0, rows_per_batch: int = 20_000, timeout: float = 600) -> baseline_pb2.Baseline:
        """Stream reference data (same shapes as `log()`) into a new immutable baseline."""
        name = _monitor_name(monitor_id)
        schema = ClientSchema.from_proto(monitor_pb2_grpc.MonitorServiceStub(self.channel).GetMonitor(
            monitor_pb2.GetMonitorRequest(name=name), metadata=self.metadata, timeout=30).monitor)
        if isinstance(scores, Mapping):
            scores = np.column_stack([np.asarray(scores[s]) for s in schema.scores])
        elif scores is None and schema.scores and data is not None:
            table = data if isinstance(data, Mapping) else None
            if table is None and hasattr(data, "columns"):
                table = {str(c): data[c].to_numpy() for c in data.columns}
            if table is not None and all(s in table for s in schema.scores):
                scores = np.column_stack([np.asarray(table[s]) for s in schema.scores])
                data = {k: v for k, v in table.items() if k not in schema.scores}
        item = LogItem.build(schema, data, embeddings, scores, None, None, None)
        arrays = assemble(schema, [item])

        def requests():
            yield baseline_pb2.CreateBaselineRequest(header=baseline_pb2.BaselineHeader(
                parent=name, baseline_id=baseline_id, model_id=model_id, git_commit=git_commit, source=source,
                activate=activate, seed=seed))
            for start in range(0, item.rows, rows_per_batch):
                stop = start + rows_per_batch
                req = baseline_pb2.CreateBaselineRequest()
                b = req.batch
                b.monitor = name
                for key in ("numeric", "categorical", "scores"):
                    if key in arrays:
                        fill_tensor(getattr(b, key), arrays[key][start:stop])
                for block, values in arrays["embeddings"].items():
                    fill_tensor(b.embeddings[block], values[start:stop])
                yield req

        return baseline_pb2_grpc.BaselineServiceStub(self.channel).CreateBaseline(requests(), metadata=self.metadata, timeout=timeout).baseline

    # -- alarms --------------------------------------------------------------------------------

    def subscribe_alarms(self, start_after: int | None = None, monitor: str | Sequence[str] | None = None,
                         severity: str | Sequence[str] | None = None, labels: Mapping[str, str] | None = None,
                         heartbeat_s: float = 5.0) -> Iterator[alarm_pb2.AlarmEvent]:
        """Alarm events, exactly once and in order, resuming from the last sequence after disconnects."""
        return subscribe_alarms(self.channel, start_after=start_after, monitor=monitor, severity=severity, labels=dict(labels or {}),
                                heartbeat_s=heartbeat_s, metadata=self.metadata)

    # -- lifecycle -----------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, SenderStats]:
        return {name: handle.stats for name, handle in self._monitors.items()}

    def flush(self, timeout: float | None = None) -> bool:
        return all(handle.flush(timeout) for handle in self._monitors.values())

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush every monitor, stop the senders, close the channel."""
        ok = all(handle.close(timeout) for handle in self._monitors.values())
        self.channel.close()
        return ok

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

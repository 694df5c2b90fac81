"""The background sender of one monitor handle.

`log()` appends a `LogItem` to a bounded buffer and returns. A sender thread forms batches of
`min_batch_bytes`–`max_batch_bytes` (or whatever arrived within `linger_s`), numbers them
(producer id + sequence), and streams them on `IngestService.StreamBatches`. Every batch stays in
`unacked` until its ack arrives:

* OK / duplicate → done (a duplicate was applied before: retries never double count);
* RESOURCE_EXHAUSTED / UNAVAILABLE in the ack → resent after the ack's RetryInfo delay (or backoff);
* any other code → dropped, its rows counted as rejected, `last_error` says why (with field violations);
* a broken stream → reconnect with exponential backoff + jitter and resend every unacked batch with
  the same sequence numbers.
"""

from __future__ import annotations

import collections
import functools
import heapq
import itertools
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Iterator

import grpc
from google.rpc import code_pb2

from driftd.client._rows import ClientSchema, LogItem, assemble
from driftd.client._stream import StreamReader
from driftd.client.wire import field_violations, fill_tensor, retry_delay, status_from_rpc_error
from driftd.v1 import ingest_pb2, ingest_pb2_grpc

RETRY_CODES = {code_pb2.RESOURCE_EXHAUSTED, code_pb2.UNAVAILABLE}
FATAL_STREAM_CODES = {grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED}


@dataclass
class SenderStats:
    rows_logged: int = 0
    rows_sent: int = 0
    rows_acked: int = 0
    rows_rejected: int = 0
    rows_dropped: int = 0
    batches_sent: int = 0
    batches_retried: int = 0
    duplicates: int = 0
    reconnects: int = 0
    streams_abandoned: int = 0  # streams whose reader grpc left blocked after the call ended (see _stream.py)
    last_error: str | None = None


@dataclass(order=True)
class _Pending:
    sequence: int
    rows: int = field(compare=False)
    request: ingest_pb2.StreamBatchesRequest = field(compare=False)
    attempts: int = field(default=0, compare=False)
    first_row: int = field(default=0, compare=False)  # index of its first row among accepted rows


class BatchSender:
    def __init__(self, channel: grpc.Channel, monitor_name: str, schema: ClientSchema, producer_id: str, *,
                 metadata: list[tuple[str, str]] | None, buffer_rows: int, min_batch_bytes: int, max_batch_bytes: int,
                 linger_s: float, max_unacked: int, ack_timeout_s: float = 30.0) -> None:
        self._stub = ingest_pb2_grpc.IngestServiceStub(channel)
        self.monitor_name = monitor_name
        self.schema = schema
        self.producer_id = producer_id
        self._metadata = metadata
        self._buffer_rows = buffer_rows
        self._min_bytes = min_batch_bytes
        self._max_bytes = max_batch_bytes
        self._linger_s = linger_s
        self._max_unacked = max_unacked
        self._ack_timeout_s = ack_timeout_s
        self._last_progress = time.monotonic()  # last ack, or when the first unacked batch went out
        self._row_bytes = 4 * (len(schema.numeric) + 2 * len(schema.categorical) + sum(d for _, d in schema.embeddings)
                               + len(schema.scores) + 2) + 16
        self._items: collections.deque[LogItem] = collections.deque()
        # older rows, compacted from single-row items into column blocks while the server is unreachable
        self._front: collections.deque[LogItem] = collections.deque()
        self._compacting = 0
        self._compacting_start = 0
        self._accepted = 0  # rows accepted by enqueue so far (each item knows its first row's index)
        self._buffered = 0
        self._inflight_rows = 0
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._sequence = itertools.count(1)
        self._unacked: dict[int, _Pending] = {}
        self._retry: list[tuple[float, int]] = []  # (due time, sequence)
        self._resend: collections.deque[int] = collections.deque()
        self._flush_requested = 0
        self._closing = False
        self._stopped = False
        self._call: Any = None
        self._fatal: str | None = None
        self._ack_timed_out = False
        self._stream_number = 0  # the current stream's number; acks of older (abandoned) ones are ignored
        self.stats = SenderStats()
        self._thread = threading.Thread(target=self._run, name=f"driftd-sender-{monitor_name}", daemon=True)
        self._thread.start()

    # -- caller side ---------------------------------------------------------------------------

    def enqueue(self, item: LogItem) -> bool:
        """Never blocks: False (rows counted as dropped) when the buffer is full."""
        with self._lock:
            self.stats.rows_logged += item.rows
            # the bound covers rows waiting AND rows in unacked batches: memory stays bounded while the server is down
            if self._buffered + self._inflight_rows + item.rows > self._buffer_rows or self._closing:
                self.stats.rows_dropped += item.rows
                return False
            item.start = self._accepted
            self._accepted += item.rows
            self._items.append(item)
            self._buffered += item.rows
            if self._buffered * self._row_bytes >= self._min_bytes:
                self._cond.notify_all()
        return True

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every row logged before this call is acknowledged (or rejected); rows logged
        meanwhile do not hold it up. False on timeout."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            mark = self._accepted
            self._flush_requested += 1
            self._cond.notify_all()
            try:
                while self._outstanding_before(mark):
                    if self._fatal:
                        raise RuntimeError(f"driftd sender stopped: {self._fatal}")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._cond.wait(0.05 if remaining is None else min(0.05, remaining))
                return True
            finally:
                self._flush_requested -= 1

    def close(self, timeout: float | None = 30.0) -> bool:
        """Flush (up to `timeout`), then stop the sender. Rows still unacknowledged after that are
        abandoned and counted in `rows_dropped` (and `last_error`). True when everything was acked."""
        flushed = self.flush(timeout) if not self._fatal else False
        with self._cond:
            self._closing = True
            self._stopped = True
            call = self._call
            self._cond.notify_all()
        if call is not None and not flushed:
            call.cancel()
        self._thread.join(timeout=5)
        with self._cond:
            abandoned = self._buffered + self._inflight_rows
            if abandoned:
                self.stats.rows_dropped += abandoned
                self.stats.last_error = f"closed with {abandoned} rows not acknowledged (last: {self.stats.last_error})"
            self._items.clear()
            self._front.clear()
            self._unacked.clear()
            self._buffered = self._inflight_rows = 0
        return flushed

    # -- sender thread -------------------------------------------------------------------------

    def _outstanding_before(self, mark: int) -> bool:
        """Rows with index < mark still buffered, being compacted, or in an unacked batch (lock held)."""
        if any(q and q[0].start < mark for q in (self._front, self._items)):
            return True
        if self._compacting and self._compacting_start < mark:
            return True
        return any(p.first_row < mark for p in self._unacked.values())

    def _waiting(self) -> bool:
        """Rows logged but not yet in a batch (lock held)."""
        return bool(self._items or self._front or self._compacting)

    def _compact(self, chunk: int = 8192) -> bool:
        """Turn up to `chunk` single-row items at the head of the buffer into one column block.

        Runs in the sender thread while the server is unreachable: a queued single row costs ~400
        bytes of Python objects, the same row as numpy columns a few dozen, so memory stays small
        for a full buffer. The lock is held only to move item references, never during conversion."""
        with self._cond:
            run: list[LogItem] = []
            while (self._items and len(run) < chunk and self._items[0].single
                   and (not run or self._items[0].optional_groups == run[0].optional_groups)):
                run.append(self._items.popleft())
            if len(run) < 2:
                self._items.extendleft(reversed(run))
                return False
            self._compacting += len(run)
            self._compacting_start = run[0].start
        try:
            block: LogItem | None = LogItem.from_arrays(self.schema, assemble(self.schema, run), len(run))
            block.start = run[0].start
        except Exception:  # noqa: BLE001 - never lose rows to a compaction problem: keep them as they were
            block = None
        with self._cond:
            self._compacting -= len(run)
            if block is None:
                self._front.extend(run)
            else:
                self._front.append(block)
            self._cond.notify_all()
        return block is not None

    def _form_batch(self) -> _Pending | None:
        """Take items worth up to max_batch_bytes (lock held)."""
        taken, rows = [], 0
        max_rows = max(1, self._max_bytes // self._row_bytes)
        while (self._front or self._items) and rows < max_rows:
            src = self._front if self._front else self._items
            item = src[0]
            if taken and item.optional_groups != taken[0].optional_groups:
                break  # e.g. rows with latencies after rows without: next batch, or the latencies would be lost
            if rows + item.rows > max_rows:
                if taken and item.single:
                    break
                # a block bigger than what fits: split it (in this thread) so no message passes max_batch_bytes
                head, tail = item.split(max_rows - rows)
                src[0] = tail
                item = head
            else:
                src.popleft()
            taken.append(item)
            rows += item.rows
        if not taken:
            return None
        self._buffered -= rows
        arrays = assemble(self.schema, taken)
        seq = next(self._sequence)
        # filled in place: a Tensor built apart and copied in would cost another copy of the bytes
        request = ingest_pb2.StreamBatchesRequest()
        batch = request.batch
        batch.monitor, batch.producer_id, batch.sequence = self.monitor_name, self.producer_id, seq
        for key in ("numeric", "categorical", "scores", "latency_ms", "status_codes"):
            if key in arrays:
                fill_tensor(getattr(batch, key), arrays[key])
        for name, block in arrays["embeddings"].items():
            fill_tensor(batch.embeddings[name], block)
        if arrays["request_ids"]:
            batch.request_ids.extend(arrays["request_ids"])
        return _Pending(seq, rows, request, first_row=taken[0].start)

    def _requests(self, stream_alive: threading.Event) -> Iterator[ingest_pb2.StreamBatchesRequest]:
        with self._cond:
            # after a reconnect: everything unacked goes again, same sequences, in order
            self._resend.clear()
            self._retry.clear()
            self._resend.extend(sorted(self._unacked))
            self._last_progress = time.monotonic()
        while stream_alive.is_set() and not self._stopped:
            with self._cond:
                pending = None
                now = time.monotonic()
                while self._retry and self._retry[0][0] <= now:
                    _, seq = heapq.heappop(self._retry)
                    if seq in self._unacked:
                        self._resend.append(seq)
                if self._resend:
                    seq = self._resend.popleft()
                    pending = self._unacked.get(seq)
                    if pending is not None:
                        self.stats.batches_retried += 1
                elif len(self._unacked) < self._max_unacked and self._waiting():
                    ready = (self._buffered * self._row_bytes >= self._min_bytes or self._flush_requested or self._closing
                             or time.monotonic() - self._oldest_wait >= self._linger_s)
                    if ready:
                        pending = self._form_batch()
                        if pending is not None:
                            if not self._unacked:
                                self._last_progress = time.monotonic()
                            self._unacked[pending.sequence] = pending
                            self._inflight_rows += pending.rows
                            self.stats.rows_sent += pending.rows
                            self.stats.batches_sent += 1
                if pending is None:
                    if self._closing and not self._waiting() and not self._unacked:
                        return
                    if not self._waiting():
                        self._oldest_wait = time.monotonic()
                    self._cond.wait(0.01 if self._waiting() or self._retry else 0.1)
                    continue
            yield pending.request

    def _ack_stalled(self) -> bool:
        """True (once per stream) when batches are unacked and nothing was acked for ack_timeout_s:
        the stream is then cancelled so they go again on a new one. Checked from the sender thread
        while it waits on the stream, not in the request generator: a call still waiting for its
        connection (seen when the server went away as the stream opened) never pulls the generator
        again, and would otherwise hang until gRPC gave up on it."""
        with self._cond:
            # not on close: the request generator ends with _stopped, which half-closes the stream
            # and lets the server finish it cleanly (close() cancels it itself when not flushed)
            if (not self._ack_timed_out and self._unacked
                    and time.monotonic() - self._last_progress > self._ack_timeout_s):
                self._ack_timed_out = True
                return True
        return False

    def _handle_ack(self, ack: ingest_pb2.BatchAck) -> None:
        with self._cond:
            self._last_progress = time.monotonic()
            pending = self._unacked.get(ack.sequence)
            if pending is None:
                return
            code = ack.status.code
            if code == code_pb2.OK:
                del self._unacked[ack.sequence]
                self._inflight_rows -= pending.rows
                self.stats.rows_acked += pending.rows
                self.stats.duplicates += int(ack.duplicate)
            elif code in RETRY_CODES:
                pending.attempts += 1
                # exponential backoff with jitter (50 ms, 100 ms, ... capped at 5 s), never shorter than
                # the server's RetryInfo: a queue that stays full must not see the batch every 50 ms forever
                backoff_s = random.uniform(0.5, 1.0) * min(5.0, 0.05 * 2 ** min(pending.attempts - 1, 8))
                delay = max(retry_delay(ack.status) or 0.0, backoff_s)
                self.stats.last_error = f"batch {ack.sequence} retried: {code_pb2.Code.Name(code)}: {ack.status.message}"
                heapq.heappush(self._retry, (time.monotonic() + delay, ack.sequence))
            else:
                del self._unacked[ack.sequence]
                self._inflight_rows -= pending.rows
                self.stats.rows_rejected += pending.rows
                fields = field_violations(ack.status)
                self.stats.last_error = (f"batch {ack.sequence} rejected: {code_pb2.Code.Name(code)}: {ack.status.message}"
                                         + (f" (fields: {', '.join(f for f, _ in fields)})" if fields else ""))
            self._cond.notify_all()

    def _on_response(self, response: ingest_pb2.StreamBatchesResponse, stream: int) -> bool:
        """One ack from stream number `stream` (reader thread). True stops reading: the sender is
        stopping, or the stream was abandoned and a newer one runs (an abandoned reader that wakes
        up late must not reset the backoff or queue retries twice; its acks are dropped, and their
        batches are still unacked, so they go again on the current stream and the server's
        deduplication answers them)."""
        if stream != self._stream_number:
            return True
        self._backoff = 0.05
        self._handle_ack(response.ack)
        return self._stopped

    def _run(self) -> None:
        self._backoff = 0.05
        self._oldest_wait = time.monotonic()
        while True:
            with self._cond:
                if self._stopped or (self._closing and not self._waiting() and not self._unacked):
                    return
            alive = threading.Event()
            alive.set()
            call = None
            self._ack_timed_out = False
            try:
                call = self._call = self._stub.StreamBatches(self._requests(alive), metadata=self._metadata)
                # acks are read in a thread of their own (see _stream.py: grpc's iterator can stay
                # blocked after the call is over); this thread watches for stalls and the end
                self._stream_number += 1
                reader = StreamReader(call, functools.partial(self._on_response, stream=self._stream_number),
                                      name=f"driftd-acks-{self.monitor_name}")
                if not reader.wait(poll_s=min(0.25, self._ack_timeout_s / 4), cancel_when=self._ack_stalled):
                    self.stats.streams_abandoned += 1
                if self._stopped:
                    return
                if reader.error is not None:
                    raise reader.error
                with self._cond:
                    if self._closing and not self._waiting() and not self._unacked:
                        return
            except ValueError:  # the channel was closed under us (client closed): nothing more to do
                return
            except grpc.RpcError as err:
                if self._stopped:
                    return
                code = err.code()
                status = status_from_rpc_error(err)
                if self._ack_timed_out:
                    self.stats.last_error = f"no ack for {self._ack_timeout_s:g} s: reconnecting"
                else:
                    self.stats.last_error = f"stream ended: {code.name}: {err.details()}"
                if code in FATAL_STREAM_CODES:
                    with self._cond:
                        self._fatal = self.stats.last_error
                        self._cond.notify_all()
                    return
                delay = retry_delay(status) if status is not None else None
                self._backoff = max(delay or 0.0, min(self._backoff * 2, 5.0))
            finally:
                alive.clear()
                if call is not None:
                    call.cancel()
            self.stats.reconnects += 1
            compact_until = time.monotonic() + self._backoff
            while time.monotonic() < compact_until and not self._stopped and self._compact():
                pass
            with self._cond:
                if self._stopped or (self._closing and not self._unacked and not self._waiting()):
                    return
                self._cond.wait(self._backoff * (0.5 + random.random()))

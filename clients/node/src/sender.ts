/**
 * The background sender of one monitor handle (same protocol as the Python client's BatchSender).
 *
 * `log()` appends an item to a bounded buffer and returns. The sender (async, on the event loop,
 * never awaited by `log()`) forms batches of `minBatchBytes`..`maxBatchBytes` (or whatever arrived
 * within `lingerMs`), numbers them (producer id + sequence), encodes each once, and streams them on
 * `IngestService.StreamBatches`. Every batch stays in `unacked` until its ack arrives:
 *
 * - OK / duplicate -> done (a duplicate was applied before: resends never double count);
 * - RESOURCE_EXHAUSTED / UNAVAILABLE in the ack -> resent after the ack's RetryInfo delay (or backoff);
 * - any other code -> dropped, its rows counted as rejected, `lastError` / `lastRejection` say why;
 * - a broken stream (or one silent for `ackTimeoutMs`) -> reconnect with exponential backoff +
 *   jitter and resend every unacked batch with the same sequence numbers, in order.
 */
import { Client as GrpcClient, makeGenericClientConstructor, Metadata, status as GrpcStatus } from "@grpc/grpc-js";
import type { ClientDuplexStream, ServiceError } from "@grpc/grpc-js";
import { Code, DriftdError } from "./errors";
import { Batch, BatchAck, IngestServiceService, StreamBatchesResponse } from "./gen/driftd/v1/ingest";
import { assemble, ClientSchema, itemRowBytes, LogItem, splitItem } from "./rows";
import { encodeBatchRequest, int64Tensor, tensor } from "./wire";
import { DataType, Tensor } from "./gen/driftd/v1/tensor";

const EMPTY = Buffer.alloc(0);

const RETRY_CODES = new Set<number>([Code.RESOURCE_EXHAUSTED, Code.UNAVAILABLE]);
const FATAL_STREAM_CODES = new Set<number>([Code.UNAUTHENTICATED, Code.PERMISSION_DENIED]);

/** StreamBatches with pre-encoded requests: each batch is serialised once, resends reuse the bytes. */
const RawIngestClient = makeGenericClientConstructor({
  streamBatches: {
    ...IngestServiceService.streamBatches,
    requestSerialize: (bytes: Buffer): Buffer => bytes,
  },
}, "driftd.v1.IngestService");

export interface SenderStats {
  rowsLogged: number;
  rowsSent: number;
  rowsAcked: number;
  rowsRejected: number;
  rowsDropped: number;
  batchesSent: number;
  batchesRetried: number;
  duplicates: number;
  reconnects: number;
  lastError: string | null;
  /** The error of the last rejected batch (code, reason, field violations). */
  lastRejection: DriftdError | null;
}

export interface SenderOptions {
  bufferRows: number;
  minBatchBytes: number;
  maxBatchBytes: number;
  lingerMs: number;
  maxUnacked: number;
  ackTimeoutMs: number;
}

interface Pending {
  sequence: number;
  rows: number;
  bytes: Buffer;
  /** retry-status acks so far (backoff grows with it; the batch is deleted on its ack) */
  attempts: number;
  /** index (in enqueued-row order) of the batch's first row: flush() waits for batches before its mark */
  firstRow: number;
  /** written on the current stream and not answered yet (only these can time out) */
  onWire: boolean;
  /** when a retry-status ack asked to wait: not resent before this time (kept across reconnects) */
  retryAt: number;
}

/** Exponential backoff with jitter (50 ms, 100 ms, ... capped at 5 s), never below the server's RetryInfo delay. */
export function retryDelay(attempts: number, serverDelayMs: number | undefined): number {
  const backoff = (0.5 + Math.random() * 0.5) * Math.min(5000, 50 * 2 ** Math.min(Math.max(attempts - 1, 0), 8));
  return Math.max(serverDelayMs ?? 0, backoff);
}

/** A promise-based condition: `wait(ms)` resolves on the next `notify()` or after ms. */
class Signal {
  private waiters: (() => void)[] = [];

  notify(): void {
    const w = this.waiters;
    if (!w.length) return;
    this.waiters = [];
    for (const resolve of w) resolve();
  }

  wait(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      const done = () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
      this.waiters.push(done);
      if (Number.isFinite(ms)) timer = setTimeout(done, Math.max(0, ms));
    });
  }
}

function optionalShape(item: LogItem): number {
  const i = item.input;
  return (i.latencyMs == null ? 0 : 1) | (i.statusCodes == null ? 0 : 2) | (i.requestIds == null ? 0 : 4);
}

export class BatchSender {
  readonly stats: SenderStats = {
    rowsLogged: 0, rowsSent: 0, rowsAcked: 0, rowsRejected: 0, rowsDropped: 0, batchesSent: 0, batchesRetried: 0,
    duplicates: 0, reconnects: 0, lastError: null, lastRejection: null,
  };
  private readonly stub: GrpcClient & { streamBatches(metadata: Metadata): ClientDuplexStream<Buffer, StreamBatchesResponse> };
  private readonly items: LogItem[] = [];
  /** first row index of each buffered item (parallel to items) */
  private readonly itemsFirst: number[] = [];
  private itemsHead = 0;
  /** rows ever passed to enqueue (accepted or dropped): flush() marks this */
  private enqueuedRows = 0;
  /** batches written on the current stream and not answered yet */
  private onWire = 0;
  /** RetryInfo delay of the last stream-level error (wait at least this before reconnecting) */
  private streamRetryMs: number | undefined;
  private buffered = 0;
  private inflightRows = 0;
  private oldestWait = 0;
  private sequence = 0;
  private readonly unacked = new Map<number, Pending>();
  private retry: { due: number; seq: number }[] = [];
  private resend: number[] = [];
  private flushRequested = 0;
  private closing = false;
  private stopped = false;
  private fatal: DriftdError | null = null;
  private lastProgress = Date.now();
  private call: ClientDuplexStream<Buffer, StreamBatchesResponse> | null = null;
  private readonly wake = new Signal(); // wakes the sender loop
  private readonly changed = new Signal(); // wakes flush() waiters
  private readonly loop: Promise<void>;
  private signalledFull = false;

  constructor(
    channelSource: GrpcClient,
    readonly monitorName: string,
    readonly schema: ClientSchema,
    readonly producerId: string,
    private readonly metadata: Metadata,
    private readonly opts: SenderOptions,
  ) {
    this.stub = new RawIngestClient("unused", null as never, { channelOverride: channelSource.getChannel() }) as never;
    this.loop = this.run().catch((err) => {
      this.fatal = DriftdError.fromServiceError(err as Error);
      this.stats.lastError = `sender stopped: ${this.fatal.message}`;
      this.changed.notify();
    });
  }

  // -- caller side ---------------------------------------------------------------------------

  /** Never blocks: false (rows counted as dropped) when the buffer is full or the sender closed. */
  enqueue(item: LogItem): boolean {
    this.stats.rowsLogged += item.rows;
    const first = this.enqueuedRows;
    this.enqueuedRows += item.rows;
    // the bound covers rows waiting AND rows in unacked batches: memory stays bounded while the server is down;
    // after a fatal stream error (UNAUTHENTICATED / PERMISSION_DENIED) nothing would ever be sent: drop
    if (this.closing || this.fatal !== null || this.buffered + this.inflightRows + item.rows > this.opts.bufferRows) {
      this.stats.rowsDropped += item.rows;
      return false;
    }
    if (this.buffered === 0) {
      this.oldestWait = Date.now();
      this.signalledFull = false;
      this.items.push(item);
      this.itemsFirst.push(first);
      this.buffered += item.rows;
      this.wake.notify(); // starts the linger clock in the loop
      return true;
    }
    this.items.push(item);
    this.itemsFirst.push(first);
    this.buffered += item.rows;
    if (!this.signalledFull && this.buffered * itemRowBytes(this.schema, item) >= this.opts.minBatchBytes) {
      this.signalledFull = true;
      this.wake.notify();
    }
    return true;
  }

  /** Estimated bytes per row of what is buffered (the next item's). */
  private rowBytesNow(): number {
    const head = this.items[this.itemsHead];
    return head ? itemRowBytes(this.schema, head) : this.schema.rowBytes;
  }

  private waiting(): boolean {
    return this.buffered > 0;
  }

  /** True while some row with index < mark is still buffered or in an unacked batch. */
  private pendingBefore(mark: number): boolean {
    if (this.itemsHead < this.items.length && this.itemsFirst[this.itemsHead] < mark) return true;
    // batches are formed in row order: the first unacked one (by sequence) has the smallest first row
    for (const p of this.unacked.values()) if (p.firstRow < mark) return true;
    return false;
  }

  /** Resolves true once everything logged before the call is acknowledged (or rejected); false on
   * timeout. Rejects when the server refused the stream for good (UNAUTHENTICATED / PERMISSION_DENIED). */
  async flush(timeoutMs?: number): Promise<boolean> {
    const deadline = timeoutMs === undefined ? Infinity : Date.now() + timeoutMs;
    // rows logged after this call do not hold it up (steady logging would never let the buffer empty)
    const mark = this.enqueuedRows;
    this.flushRequested += 1;
    this.wake.notify();
    try {
      while (this.pendingBefore(mark)) {
        if (this.fatal) throw this.fatal;
        const remaining = deadline - Date.now();
        if (remaining <= 0) return false;
        await this.changed.wait(Math.min(remaining, 1000));
      }
      if (this.fatal && this.stopped) throw this.fatal;
      return true;
    } finally {
      this.flushRequested -= 1;
    }
  }

  /** Flush (up to timeoutMs), then stop. Rows still unacknowledged are counted as dropped. */
  async close(timeoutMs = 30_000): Promise<boolean> {
    let flushed = false;
    if (!this.fatal) {
      try {
        flushed = await this.flush(timeoutMs);
      } catch {
        flushed = false;
      }
    }
    this.closing = true;
    this.stopped = true;
    const call = this.call;
    if (call !== null) {
      if (flushed) call.end();
      else call.cancel();
    }
    this.wake.notify();
    await Promise.race([this.loop, new Promise((r) => setTimeout(r, 5000).unref())]);
    const abandoned = this.buffered + this.inflightRows;
    if (abandoned) {
      this.stats.rowsDropped += abandoned;
      this.stats.lastError = `closed with ${abandoned} rows not acknowledged (last: ${this.stats.lastError})`;
    }
    this.items.length = 0;
    this.itemsFirst.length = 0;
    this.itemsHead = 0;
    this.unacked.clear();
    this.onWire = 0;
    this.buffered = this.inflightRows = 0;
    this.changed.notify();
    return flushed;
  }

  // -- sender loop -----------------------------------------------------------------------------

  private formBatch(): Pending | null {
    const head = this.items[this.itemsHead];
    const maxRows = Math.max(1, Math.floor(this.opts.maxBatchBytes / (head ? itemRowBytes(this.schema, head) : this.schema.rowBytes)));
    const taken: LogItem[] = [];
    let rows = 0;
    let shape = -1;
    const firstRow = this.itemsFirst[this.itemsHead] ?? this.enqueuedRows;
    while (this.itemsHead < this.items.length && rows < maxRows) {
      let item = this.items[this.itemsHead];
      // one batch carries latency / status codes / request ids for all its rows or none: items that
      // differ in which they have go in separate batches (so no row loses its latency)
      const s = optionalShape(item);
      if (shape >= 0 && s !== shape) break;
      shape = s;
      if (rows + item.rows > maxRows) {
        if (taken.length && item.single) break;
        // a block bigger than what fits: take its head (views, no copy) so no message passes maxBatchBytes
        const [head, tail] = splitItem(item, maxRows - rows);
        this.items[this.itemsHead] = tail;
        this.itemsFirst[this.itemsHead] += head.rows;
        item = head;
      } else {
        this.itemsHead += 1;
      }
      taken.push(item);
      rows += item.rows;
    }
    if (this.itemsHead > 4096 && this.itemsHead * 2 > this.items.length) {
      this.items.splice(0, this.itemsHead);
      this.itemsFirst.splice(0, this.itemsHead);
      this.itemsHead = 0;
    } else if (this.itemsHead === this.items.length) {
      this.items.length = 0;
      this.itemsFirst.length = 0;
      this.itemsHead = 0;
    }
    if (!taken.length) return null;
    this.buffered -= rows;
    if (this.buffered * this.rowBytesNow() < this.opts.minBatchBytes) this.signalledFull = false;
    const a = assemble(this.schema, taken);
    const seq = ++this.sequence;
    const n = a.rows;
    const embeddings: Record<string, Tensor> = {};
    for (const [name, arr] of a.embeddings) embeddings[name] = tensor(arr, [n, arr.length / Math.max(n, 1)]);
    const batch: Batch = {
      monitor: this.monitorName, producerId: this.producerId, sequence: seq,
      numeric: a.numeric ? tensor(a.numeric, [n, this.schema.numeric.length])
        : a.numericChunks && { dtype: DataType.DATA_TYPE_FLOAT32, shape: [n, this.schema.numeric.length], data: EMPTY },
      categorical: a.categorical && int64Tensor(a.categorical, [n, this.schema.categorical.length]),
      embeddings,
      scores: a.scores && tensor(a.scores, [n, this.schema.scores.length]),
      latencyMs: a.latencyMs && tensor(a.latencyMs, [n]),
      statusCodes: a.statusCodes && tensor(a.statusCodes, [n]),
      requestIds: a.requestIds ?? [],
      eventTime: undefined,
    };
    const bytes = encodeBatchRequest(batch, a.numericChunks); // tensor bytes copied once, into the message
    return { sequence: seq, rows, bytes, attempts: 0, firstRow, onWire: false, retryAt: 0 };
  }

  private handleAck(ack: BatchAck | undefined): void {
    if (!ack) return;
    this.lastProgress = Date.now();
    const pending = this.unacked.get(ack.sequence);
    if (pending === undefined) return;
    if (pending.onWire) {
      pending.onWire = false;
      this.onWire -= 1;
    }
    const code = ack.status?.code ?? Code.OK;
    if (code === Code.OK) {
      this.unacked.delete(ack.sequence);
      this.inflightRows -= pending.rows;
      this.stats.rowsAcked += pending.rows;
      if (ack.duplicate) this.stats.duplicates += 1;
    } else if (RETRY_CODES.has(code)) {
      const err = DriftdError.fromStatus(ack.status!);
      pending.attempts += 1;
      // grows per batch (50 ms, 100 ms, ... 5 s, jittered), never below what the server said (RetryInfo)
      const delay = retryDelay(pending.attempts, err.retryDelayMs);
      this.stats.lastError = `batch ${ack.sequence} retried: ${err.message}`;
      pending.retryAt = Date.now() + delay;
      this.retry.push({ due: pending.retryAt, seq: ack.sequence });
      this.retry.sort((x, y) => x.due - y.due);
    } else {
      const err = DriftdError.fromStatus(ack.status!);
      this.unacked.delete(ack.sequence);
      this.inflightRows -= pending.rows;
      this.stats.rowsRejected += pending.rows;
      this.stats.lastRejection = err;
      const fields = err.fieldViolations.map((v) => v.field);
      this.stats.lastError = `batch ${ack.sequence} rejected: ${err.message}` + (fields.length ? ` (fields: ${fields.join(", ")})` : "");
    }
    this.wake.notify();
    this.changed.notify();
  }

  private done(): boolean {
    return this.stopped || (this.closing && !this.waiting() && this.unacked.size === 0);
  }

  private async run(): Promise<void> {
    let backoff = 50;
    this.oldestWait = Date.now();
    while (!this.done()) {
      if (!this.unacked.size && !this.waiting()) {
        // nothing to send: no stream is held open (an idle handle keeps no call, no timer alive)
        await this.wake.wait(Infinity);
        continue;
      }
      const outcome = await this.streamOnce();
      if (this.fatal || this.done()) return;
      if (outcome === "idle") continue; // ended by us with everything acknowledged: not a failure
      if (outcome === "acked") backoff = 50;
      this.stats.reconnects += 1;
      // a stream error's RetryInfo (e.g. the server shedding load) is a floor on the wait
      const serverDelay = this.streamRetryMs ?? 0;
      this.streamRetryMs = undefined;
      const wait = Math.max(serverDelay, backoff * (0.5 + Math.random()));
      const until = Date.now() + wait;
      // wake-ups (new rows, flush()) do not cut the wait short
      while (!this.done() && Date.now() < until) await this.wake.wait(until - Date.now());
      backoff = Math.min(backoff * 2, 5000);
    }
  }

  /** One StreamBatches call; resolves when it ends: "idle" when we ended it with nothing left to
   * send, "acked" when it broke after at least one ack, "failed" otherwise. */
  private async streamOnce(): Promise<"idle" | "acked" | "failed"> {
    const call = this.stub.streamBatches(this.metadata);
    this.call = call;
    let ended = false;
    let acked = false;
    let timedOut = false;
    let onEnd: (() => void) | null = null; // a backpressure wait, woken when the call ends
    const finished = new Promise<void>((resolve) => {
      call.on("data", (resp: StreamBatchesResponse) => {
        acked = true;
        this.handleAck(resp.ack);
      });
      call.on("error", (err: ServiceError) => {
        ended = true;
        const derr = DriftdError.fromServiceError(err);
        if (FATAL_STREAM_CODES.has(err.code)) this.fatal = derr;
        if (derr.retryDelayMs !== undefined) this.streamRetryMs = derr.retryDelayMs;
        // our own cancel (close, ack timeout) keeps the message that says why
        if (err.code !== GrpcStatus.CANCELLED || !(this.stopped || timedOut)) this.stats.lastError = `stream: ${derr.message}`;
        onEnd?.();
        this.wake.notify();
        this.changed.notify();
        resolve();
      });
      call.on("status", () => {
        ended = true;
        onEnd?.();
        this.wake.notify();
        resolve();
      });
      call.on("end", () => {
        ended = true;
        this.wake.notify();
      });
    });
    // after a (re)connect: everything unacked goes again, same sequences, in order; a batch still
    // waiting out a retry delay keeps waiting (its retry entry stays)
    const start = Date.now();
    this.onWire = 0;
    for (const p of this.unacked.values()) p.onWire = false;
    this.retry = this.retry.filter((r) => r.due > start && this.unacked.get(r.seq)?.retryAt === r.due);
    this.resend = [...this.unacked.values()].filter((p) => p.retryAt <= start).map((p) => p.sequence).sort((a, b) => a - b);
    this.lastProgress = start;
    let idleSince = start;
    let idle = false;
    while (!ended && !this.stopped) {
      const now = Date.now();
      if (this.onWire > 0 && now - this.lastProgress > this.opts.ackTimeoutMs) {
        // a stream that stopped answering (dead peer, no RST): give up on it, resend on a new one.
        // Only batches actually written count: one waiting out a retry delay is not overdue.
        this.stats.lastError = `no ack for ${this.opts.ackTimeoutMs} ms: reconnecting`;
        timedOut = true;
        call.cancel();
        break;
      }
      while (this.retry.length && this.retry[0].due <= now) {
        const { seq, due } = this.retry.shift()!;
        const p = this.unacked.get(seq);
        if (p !== undefined && !p.onWire && p.retryAt === due) this.resend.push(seq);
      }
      let pending: Pending | null = null;
      while (this.resend.length && pending === null) {
        const p = this.unacked.get(this.resend.shift()!);
        if (p !== undefined && !p.onWire) {
          pending = p;
          this.stats.batchesRetried += 1;
        }
      }
      if (pending === null && this.unacked.size < this.opts.maxUnacked && this.waiting()) {
        const ready = this.buffered * this.rowBytesNow() >= this.opts.minBatchBytes || this.flushRequested > 0 || this.closing
          || now - this.oldestWait >= this.opts.lingerMs;
        if (ready) {
          pending = this.formBatch();
          if (pending) {
            this.unacked.set(pending.sequence, pending);
            this.inflightRows += pending.rows;
            this.stats.rowsSent += pending.rows;
            this.stats.batchesSent += 1;
            if (this.waiting()) this.oldestWait = Date.now();
            this.changed.notify();
          }
        }
      }
      if (pending === null) {
        if (!this.waiting() && !this.unacked.size) {
          // all acknowledged: end the call after a quiet second (or at once when closing)
          if (this.closing || now - idleSince > 1000) {
            idle = true;
            call.end();
            break;
          }
        } else {
          idleSince = now;
        }
        let wait = 1000;
        if (this.waiting()) wait = Math.min(wait, this.opts.lingerMs - (now - this.oldestWait));
        if (this.retry.length) wait = Math.min(wait, this.retry[0].due - now);
        if (this.onWire > 0) wait = Math.min(wait, this.opts.ackTimeoutMs - (now - this.lastProgress) + 1);
        await this.wake.wait(Math.max(1, wait));
        continue;
      }
      idleSince = Date.now();
      // the ack clock runs from when the first batch goes on the wire (or the last ack)
      if (this.onWire === 0) this.lastProgress = idleSince;
      pending.onWire = true;
      pending.retryAt = 0;
      this.onWire += 1;
      if (!call.write(pending.bytes)) {
        // transport backpressure: wait until the call drains (or ends); no listener outlives the wait
        await new Promise<void>((resolve) => {
          const go = () => {
            call.off("drain", go);
            onEnd = null;
            resolve();
          };
          call.on("drain", go);
          if (ended) go();
          else onEnd = go;
        });
      } else {
        // forming / encoding many batches back to back must not stall the event loop
        await new Promise(setImmediate);
      }
    }
    await finished;
    if (this.call === call) this.call = null;
    if (idle && !this.unacked.size) return "idle";
    return acked ? "acked" : "failed";
  }
}

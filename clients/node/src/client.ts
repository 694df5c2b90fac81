/**
 * The driftd Node.js client.
 *
 *     const client = new Client("127.0.0.1:50051", { token: process.env.DRIFTD_TOKEN });
 *     const monitor = await client.monitor("fraud-v3");
 *     monitor.log({ features: { amount: 12.3, country: "de" }, scores: [0.81], latencyMs: 14.2 });
 *     await monitor.flush();
 *     console.log((await monitor.snapshot()).verdict);
 *     await client.close();
 */
import crypto from "node:crypto";
import os from "node:os";
import { Channel, ChannelCredentials, credentials as grpcCredentials, Metadata } from "@grpc/grpc-js";
import type { CallOptions, ChannelOptions, ClientWritableStream, ServiceError } from "@grpc/grpc-js";
import { DriftdError, rich } from "./errors";
import { AlarmSubscription, SubscribeOptions, SEVERITIES } from "./alarms";
import { Alarm, AlarmServiceClient, AlarmState, ListAlarmsResponse } from "./gen/driftd/v1/alarm";
import { Baseline, BaselineServiceClient, CreateBaselineRequest, CreateBaselineResponse } from "./gen/driftd/v1/baseline";
import { Batch, IngestServiceClient, WriteLabelsResponse } from "./gen/driftd/v1/ingest";
import {
  AlarmRule, Monitor, MonitorServiceClient, ScoreKind, Severity, StatisticsConfig,
} from "./gen/driftd/v1/monitor";
import { Snapshot, SnapshotServiceClient, WatchSnapshotsResponse } from "./gen/driftd/v1/snapshot";
import { Duration } from "./gen/google/protobuf/duration";
import { assemble, buildItem, ClientSchema, Column, EmbeddingInput, Features, LogInput, numericColumns, Scores } from "./rows";
import { BatchSender, SenderOptions, SenderStats } from "./sender";
import { int64Tensor, tensor } from "./wire";

const KiB = 1024;
const MiB = 1024 * 1024;

export function monitorName(monitorId: string): string {
  return monitorId.startsWith("monitors/") ? monitorId : `monitors/${monitorId}`;
}

/** Unique per process and client: host, pid and a random suffix. */
export function defaultProducerId(): string {
  return `${os.hostname()}-${process.pid}-${crypto.randomBytes(4).toString("hex")}`;
}

export function duration(ms: number): Duration {
  return { seconds: Math.floor(ms / 1000), nanos: Math.round((ms - Math.floor(ms / 1000) * 1000) * 1e6) };
}

export interface ClientOptions extends Partial<SenderOptions> {
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** Names this process for exactly-once dedupe (default: host-pid-random). */
  producerId?: string;
  /** TLS with the system roots (or pass `credentials`, e.g. grpc.credentials.createSsl(root, key, cert) for mTLS). */
  tls?: boolean;
  credentials?: ChannelCredentials;
  /** Extra grpc-js channel options. */
  channelOptions?: ChannelOptions;
}

export interface CreateMonitorOptions {
  numeric?: string[];
  /** Categorical feature -> category names (codes 0..K-1). */
  categorical?: Record<string, string[]>;
  /** Embedding block -> dim. */
  embeddings?: Record<string, number>;
  /** Score outputs (probabilities). */
  scores?: string[];
  modelId?: string;
  modelVersion?: string;
  lane?: string;
  description?: string;
  labels?: Record<string, string>;
  paneSeconds?: number;
  paneCount?: number;
  /** Default: paneSeconds. */
  evaluationSeconds?: number;
  validRanges?: Record<string, [number | null | undefined, number | null | undefined]>;
  statistics?: Partial<StatisticsConfig>;
  /** Without rules the server installs its default rule pack. */
  rules?: AlarmRule[];
}

export interface BaselineData {
  features?: Features;
  embeddings?: Record<string, EmbeddingInput>;
  scores?: Scores;
}

export interface CreateBaselineOptions {
  activate?: boolean;
  baselineId?: string;
  modelId?: string;
  gitCommit?: string;
  source?: string;
  seed?: number;
  rowsPerBatch?: number;
  timeoutMs?: number;
}

function deadline(ms: number): CallOptions {
  return { deadline: Date.now() + ms };
}

type Unary<Req, Res> = (req: Req, md: Metadata, opts: Partial<CallOptions>, cb: (err: ServiceError | null, res: Res) => void) => unknown;

function unary<Req, Res>(fn: Unary<Req, Res>, self: object, req: Req, md: Metadata, timeoutMs = 30_000): Promise<Res> {
  return rich(new Promise<Res>((resolve, reject) => {
    fn.call(self, req, md, deadline(timeoutMs), (err, res) => (err ? reject(err) : resolve(res)));
  }));
}

/** Logging, labels and snapshots of one monitor. Get one with `await client.monitor(id)`. */
export class MonitorHandle {
  readonly name: string;
  readonly schema: ClientSchema;
  private readonly sender: BatchSender;

  constructor(private readonly client: Client, readonly monitor: Monitor) {
    this.name = monitor.name;
    this.schema = ClientSchema.fromMonitor(monitor);
    this.sender = new BatchSender(client.ingest, monitor.name, this.schema, client.producerId, client.metadata, client.senderOptions);
  }

  /**
   * Queue one row (`features` a record of scalars) or a block of rows (a record of columns, a
   * row-major Float32Array [N * numeric], or number[][]). Never blocks and never throws for
   * backpressure: returns false when the buffer was full and the rows were dropped (counted in
   * `stats().rowsDropped`). Only cheap checks run here and throw a DriftdError(INVALID_ARGUMENT)
   * at once: unknown feature names, a missing embedding block or scores, wrong shapes, columns of
   * different lengths. Conversion to columns happens in the sender, many rows at once.
   */
  log(input: LogInput): boolean {
    return this.sender.enqueue(buildItem(this.schema, input));
  }

  /** Resolves true once everything logged before the call is acknowledged (or rejected: see
   * `stats().rowsRejected`), false on timeout. Rejects when the server refused the stream for good. */
  flush(timeoutMs?: number): Promise<boolean> {
    return this.sender.flush(timeoutMs);
  }

  /** Live counters (a copy). */
  stats(): SenderStats {
    return { ...this.sender.stats };
  }

  /** Delayed ground truth; rows join by request id. Flushes first so the rows are there. */
  async logLabels(requestIds: ArrayLike<string>, labels: ArrayLike<number>, timeoutMs = 30_000): Promise<WriteLabelsResponse> {
    await this.flush(timeoutMs);
    const ids = Array.from(requestIds, String);
    const values = labels instanceof Float32Array ? labels : Float32Array.from(labels);
    return unary(this.client.ingest.writeLabels, this.client.ingest,
      { monitor: this.name, requestIds: ids, labels: tensor(values, [values.length]), labelTime: undefined }, this.client.metadata, timeoutMs);
  }

  /** The latest snapshot. */
  async snapshot(timeoutMs = 30_000): Promise<Snapshot> {
    const res = await unary(this.client.snapshots.getSnapshot, this.client.snapshots,
      { name: `${this.name}/snapshots/latest`, atTime: undefined }, this.client.metadata, timeoutMs);
    return res.snapshot!;
  }

  /** A snapshot each evaluation, until the caller stops iterating (`break` cancels the call). */
  async *watchSnapshots(): AsyncGenerator<Snapshot> {
    const call = this.client.snapshots.watchSnapshots({ parent: this.name }, this.client.metadata);
    try {
      for await (const res of call as AsyncIterable<WatchSnapshotsResponse>) yield res.snapshot!;
    } catch (err) {
      throw DriftdError.fromServiceError(err as Error);
    } finally {
      call.cancel();
    }
  }

  /** Flush (up to timeoutMs), then stop the sender; rows still unacknowledged are counted as dropped. */
  close(timeoutMs = 30_000): Promise<boolean> {
    return this.sender.close(timeoutMs);
  }
}

/** A connection to driftd; one per process is enough. See ClientOptions for the batching knobs:
 * messages of minBatchBytes..maxBatchBytes (256 KiB - 4 MiB) or whatever arrived within lingerMs;
 * at most bufferRows rows wait per monitor (more are dropped and counted), at most maxUnacked
 * batches in flight; a stream silent for ackTimeoutMs with batches unanswered is abandoned and
 * everything unacknowledged resent on a new one. */
export class Client {
  readonly target: string;
  readonly metadata: Metadata;
  readonly producerId: string;
  readonly senderOptions: SenderOptions;
  readonly channel: Channel;
  readonly monitors: MonitorServiceClient;
  readonly baselines: BaselineServiceClient;
  readonly ingest: IngestServiceClient;
  readonly snapshots: SnapshotServiceClient;
  readonly alarms: AlarmServiceClient;
  private readonly handles = new Map<string, Promise<MonitorHandle>>();

  constructor(target = "127.0.0.1:50051", opts: ClientOptions = {}) {
    this.target = target;
    const creds = opts.credentials ?? (opts.tls ? grpcCredentials.createSsl() : grpcCredentials.createInsecure());
    this.channel = new Channel(target, creds, {
      "grpc.max_send_message_length": 64 * MiB, "grpc.max_receive_message_length": 64 * MiB,
      // reconnect within seconds after a server restart (grpc-js waits up to 120 s by default)
      "grpc.initial_reconnect_backoff_ms": 200, "grpc.max_reconnect_backoff_ms": 5000, ...(opts.channelOptions ?? {}),
    });
    this.metadata = new Metadata();
    if (opts.token) this.metadata.set("authorization", `Bearer ${opts.token}`);
    this.producerId = opts.producerId ?? defaultProducerId();
    this.senderOptions = {
      bufferRows: opts.bufferRows ?? 1_000_000, minBatchBytes: opts.minBatchBytes ?? 256 * KiB, maxBatchBytes: opts.maxBatchBytes ?? 4 * MiB,
      lingerMs: opts.lingerMs ?? 200, maxUnacked: opts.maxUnacked ?? 64, ackTimeoutMs: opts.ackTimeoutMs ?? 30_000,
    };
    const shared = { channelOverride: this.channel };
    this.monitors = new MonitorServiceClient(target, creds, shared);
    this.baselines = new BaselineServiceClient(target, creds, shared);
    this.ingest = new IngestServiceClient(target, creds, shared);
    this.snapshots = new SnapshotServiceClient(target, creds, shared);
    this.alarms = new AlarmServiceClient(target, creds, shared);
  }

  // -- monitors and baselines ----------------------------------------------------------------

  /** The handle of an existing monitor (NOT_FOUND as a DriftdError otherwise). One per monitor. */
  monitor(monitorId: string): Promise<MonitorHandle> {
    const name = monitorName(monitorId);
    let h = this.handles.get(name);
    if (h === undefined) {
      h = this.getMonitor(name).then((m) => new MonitorHandle(this, m));
      h.catch(() => this.handles.delete(name));
      this.handles.set(name, h);
    }
    return h;
  }

  async getMonitor(monitorId: string): Promise<Monitor> {
    return (await unary(this.monitors.getMonitor, this.monitors, { name: monitorName(monitorId) }, this.metadata)).monitor!;
  }

  async deleteMonitor(monitorId: string): Promise<void> {
    await unary(this.monitors.deleteMonitor, this.monitors, { name: monitorName(monitorId) }, this.metadata);
  }

  /** Create a monitor (INVALID_ARGUMENT with field violations for a bad spec, ALREADY_EXISTS for a taken id). */
  async createMonitor(monitorId: string, o: CreateMonitorOptions = {}): Promise<Monitor> {
    const ranges = o.validRanges ?? {};
    const monitor = Monitor.fromPartial({
      modelId: o.modelId ?? "", modelVersion: o.modelVersion ?? "", lane: o.lane ?? "", description: o.description ?? "",
      labels: o.labels ?? {},
      schema: {
        numericFeatures: (o.numeric ?? []).map((name) => {
          const [lo, hi] = ranges[name] ?? [];
          return { name, validMin: lo ?? undefined, validMax: hi ?? undefined };
        }),
        categoricalFeatures: Object.entries(o.categorical ?? {}).map(([name, cats]) => ({ name, categories: cats.map(String) })),
        embeddingBlocks: Object.entries(o.embeddings ?? {}).map(([name, dim]) => ({ name, dim })),
        scoreOutputs: (o.scores ?? []).map((name) => ({ name, kind: ScoreKind.SCORE_KIND_PROBABILITY })),
      },
      window: o.paneSeconds === undefined && o.paneCount === undefined && o.evaluationSeconds === undefined ? undefined : {
        paneDuration: o.paneSeconds === undefined ? undefined : duration(o.paneSeconds * 1000),
        paneCount: o.paneCount ?? 0,
        evaluationInterval: o.evaluationSeconds === undefined ? undefined : duration(o.evaluationSeconds * 1000),
      },
      statistics: o.statistics,
      rules: o.rules ?? [],
    });
    return (await unary(this.monitors.createMonitor, this.monitors, { monitorId, monitor }, this.metadata)).monitor!;
  }

  /** Stream reference data (same shapes as `log()` blocks) into a new immutable baseline. */
  async createBaseline(monitorId: string, data: BaselineData, o: CreateBaselineOptions = {}): Promise<Baseline> {
    const name = monitorName(monitorId);
    const schema = ClientSchema.fromMonitor(await this.getMonitor(name));
    const item = buildItem(schema, { features: data.features, embeddings: data.embeddings, scores: data.scores });
    if (item.single) throw new DriftdError(3, "a baseline needs a block of rows (columns), not one row", { reason: "BAD_SHAPE" });
    const a = assemble(schema, [item]);
    const numeric = numericColumns(a);
    const per = o.rowsPerBatch ?? 20_000;
    const timeoutMs = o.timeoutMs ?? 600_000;
    const res = await rich(new Promise<CreateBaselineResponse>((resolve, reject) => {
      const call: ClientWritableStream<CreateBaselineRequest> = this.baselines.createBaseline(this.metadata, deadline(timeoutMs),
        (err, r) => (err ? reject(err) : resolve(r)));
      const write = async () => {
        const send = (req: CreateBaselineRequest) => new Promise<void>((ok) => (call.write(req) ? ok() : call.once("drain", ok)));
        await send({ payload: { $case: "header", value: {
          parent: name, baselineId: o.baselineId ?? "", modelId: o.modelId ?? "", gitCommit: o.gitCommit ?? "", source: o.source ?? "",
          activate: o.activate ?? true, seed: o.seed ?? 0,
        } } });
        for (let start = 0; start < a.rows; start += per) {
          const stop = Math.min(a.rows, start + per);
          const n = stop - start;
          const slice = <T extends Float32Array | Int32Array>(arr: T, k: number) => arr.subarray(start * k, stop * k) as T;
          const embeddings: Batch["embeddings"] = {};
          for (const [block, dim] of schema.embeddings) embeddings[block] = tensor(slice(a.embeddings.get(block)!, dim), [n, dim]);
          const kn = schema.numeric.length, kc = schema.categorical.length, ks = schema.scores.length;
          await send({ payload: { $case: "batch", value: Batch.fromPartial({
            monitor: name,
            numeric: numeric && tensor(slice(numeric, kn), [n, kn]),
            categorical: a.categorical && int64Tensor(slice(a.categorical, kc), [n, kc]),
            scores: a.scores && tensor(slice(a.scores, ks), [n, ks]),
            embeddings,
          }) } });
        }
        call.end();
      };
      write().catch((err) => { call.cancel(); reject(err); });
    }));
    return res.baseline!;
  }

  // -- alarms --------------------------------------------------------------------------------

  /** Alarm events, exactly once and in order, resuming from the last sequence after disconnects.
   * `startAfter: 0` replays the whole retained log; omitted = live events only. */
  subscribeAlarms(opts: SubscribeOptions = {}): AlarmSubscription {
    return new AlarmSubscription(this.alarms, this.metadata, opts);
  }

  /** Current alarm instances of a monitor (or of all with "-"). */
  async listAlarms(monitorId = "-", o: { states?: AlarmState[]; severity?: string[]; pageSize?: number } = {}): Promise<Alarm[]> {
    const out: Alarm[] = [];
    let pageToken = "";
    do {
      const res: ListAlarmsResponse = await unary(this.alarms.listAlarms, this.alarms, {
        parent: monitorName(monitorId), states: o.states ?? [], severities: (o.severity ?? []).map((s) => SEVERITIES[s] ?? Severity.SEVERITY_UNSPECIFIED),
        pageSize: o.pageSize ?? 1000, pageToken,
      }, this.metadata);
      out.push(...res.alarms);
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  }

  // -- lifecycle -----------------------------------------------------------------------------

  async stats(): Promise<Record<string, SenderStats>> {
    const out: Record<string, SenderStats> = {};
    for (const [name, h] of this.handles) out[name] = (await h).stats();
    return out;
  }

  async flush(timeoutMs?: number): Promise<boolean> {
    const handles = await Promise.all([...this.handles.values()].map((h) => h.catch(() => null)));
    const results = await Promise.all(handles.map((h) => (h ? h.flush(timeoutMs) : true)));
    return results.every(Boolean);
  }

  /** Flush every monitor, stop the senders, close the channel. */
  async close(timeoutMs = 30_000): Promise<boolean> {
    const handles = await Promise.all([...this.handles.values()].map((h) => h.catch(() => null)));
    const results = await Promise.all(handles.map((h) => (h ? h.close(timeoutMs) : true)));
    this.channel.close();
    return results.every(Boolean);
  }
}

export type { Column, Features, LogInput, Scores, EmbeddingInput };

/**
 * Resumable alarm subscriptions: every alarm event exactly once, in sequence order, across
 * disconnects and server restarts. The subscription remembers the last sequence it yielded and the
 * last heartbeat's high-water mark (which only covers events this subscription was offered) and
 * resubscribes with `start_after_sequence` = the larger (`cursor`), so the server replays what was
 * missed from its durable log, also for a live-only subscription that has seen no event yet.
 *
 *     const sub = client.subscribeAlarms({ startAfter: 0, monitor: "fraud-v3" });
 *     for await (const event of sub) console.log(event.sequence, event.ruleId, event.summary);
 */
import type { Metadata } from "@grpc/grpc-js";
import { Code, DriftdError } from "./errors";
import { AlarmEvent, AlarmServiceClient, SubscribeAlarmsRequest, SubscribeAlarmsResponse } from "./gen/driftd/v1/alarm";
import { Severity } from "./gen/driftd/v1/monitor";

/** Retried after a backoff; anything else (bad filters, auth, expired cursor) ends the iteration with a DriftdError. */
export const RETRYABLE = new Set<number>([Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED, Code.RESOURCE_EXHAUSTED, Code.ABORTED,
  Code.INTERNAL, Code.CANCELLED]);

export const SEVERITIES: Record<string, Severity> = { P1: Severity.SEVERITY_P1, P2: Severity.SEVERITY_P2, P3: Severity.SEVERITY_P3 };

export interface SubscribeOptions {
  /** Resume after this sequence: 0 replays the whole retained log; undefined = live events only. */
  startAfter?: number;
  /** Monitor id(s) or `monitors/{m}` name(s); empty = all. */
  monitor?: string | string[];
  /** "P1" / "P2" / "P3" or Severity values; empty = all. */
  severity?: string | Severity | (string | Severity)[];
  labels?: Record<string, string>;
  /** Heartbeat interval asked of the server (default 5000 ms). */
  heartbeatMs?: number;
}

/** How long a subscription may hear nothing before it is reopened: the server sends a heartbeat
 * whenever it sent nothing for the heartbeat interval, so three missed beats plus a second mean
 * the connection is gone (16 s at the default 5 s; the same limit as the Python client, which
 * reads the stream in a thread of its own and so counts silence whatever the consumer does; here
 * the stream is read only while nobody holds an event, so the timer runs only then). */
export function silenceLimitMs(heartbeatMs: number): number {
  return 3 * heartbeatMs + 1000;
}

function asList<T>(x: T | T[] | undefined): T[] {
  return x === undefined ? [] : Array.isArray(x) ? x : [x];
}

export class AlarmSubscription implements AsyncIterable<AlarmEvent> {
  /** Sequence of the last event yielded (the resume cursor). */
  lastSequence: number | undefined;
  /** Highest sequence of the log seen (events or heartbeats, matching the filters or not). */
  highWater = 0;
  /** Times the subscription had to reconnect. */
  reconnects = 0;
  /** Heartbeats received. */
  heartbeats = 0;
  private backoffMs = 100;
  private closed = false;
  private call: ReturnType<AlarmServiceClient["subscribeAlarms"]> | null = null;
  private sleeping: (() => void) | null = null;
  private iterating = false;
  private heartbeatSeen = false;

  constructor(private readonly stub: AlarmServiceClient, private readonly metadata: Metadata, private readonly opts: SubscribeOptions = {}) {
    this.lastSequence = opts.startAfter;
  }

  /** Where to resume: past the last event yielded and past the last heartbeat's high-water mark;
   * undefined (live only) until either exists. */
  get cursor(): number | undefined {
    if (this.lastSequence === undefined && !this.heartbeatSeen) return undefined;
    return Math.max(this.lastSequence ?? 0, this.highWater);
  }

  request(): SubscribeAlarmsRequest {
    const severities = asList(this.opts.severity).map((s) => {
      if (typeof s === "number") return s;
      const v = SEVERITIES[s.toUpperCase().replace(/^SEVERITY_/, "")];
      if (v === undefined) throw new DriftdError(Code.INVALID_ARGUMENT, `unknown severity ${JSON.stringify(s)}; use P1, P2 or P3`,
        { reason: "INVALID_SEVERITY", fieldViolations: [{ field: "severity", description: "use P1, P2 or P3" }] });
      return v;
    });
    const ms = this.opts.heartbeatMs ?? 5000;
    return {
      monitors: asList(this.opts.monitor).map((m) => (m.startsWith("monitors/") ? m : `monitors/${m}`)),
      severities,
      labels: { ...(this.opts.labels ?? {}) },
      startAfterSequence: this.cursor,
      heartbeatInterval: { seconds: Math.floor(ms / 1000), nanos: Math.round((ms % 1000) * 1e6) },
    };
  }

  /** The event to yield for a response, or undefined (heartbeat, or a replayed duplicate). */
  accept(response: SubscribeAlarmsResponse): AlarmEvent | undefined {
    this.backoffMs = 100;
    const m = response.message;
    if (m === undefined) return undefined;
    if (m.$case === "heartbeat") {
      this.heartbeats += 1;
      this.heartbeatSeen = true;
      this.highWater = Math.max(this.highWater, m.value.highWaterSequence);
      return undefined;
    }
    const event = m.value;
    const cursor = this.cursor;
    if (cursor !== undefined && event.sequence <= cursor) return undefined; // never a duplicate
    this.lastSequence = event.sequence;
    this.highWater = Math.max(this.highWater, event.sequence);
    return event;
  }

  /** End the iteration (cancels the current call). */
  close(): void {
    this.closed = true;
    this.call?.cancel();
    this.sleeping?.();
  }

  /** Drop the current call as a network failure would (the iteration reconnects and resumes). */
  disconnect(): void {
    this.call?.cancel();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<AlarmEvent> {
    if (this.iterating) throw new Error("an AlarmSubscription can be iterated once at a time");
    this.iterating = true;
    try {
      const request = () => this.request();
      while (!this.closed) {
        const call = this.stub.subscribeAlarms(request(), this.metadata);
        this.call = call;
        // A stream silent for silenceLimitMs is a dead connection that did not say so (half-open
        // TCP, a proxy that dropped it): cancel it (CANCELLED is retried) and resubscribe. The
        // timer runs only while waiting on the stream, never while the consumer holds an event.
        let silence: NodeJS.Timeout | undefined;
        const listen = () => { silence = setTimeout(() => call.cancel(), silenceLimitMs(this.opts.heartbeatMs ?? 5000)); };
        try {
          listen();
          for await (const response of call as AsyncIterable<SubscribeAlarmsResponse>) {
            clearTimeout(silence);
            const event = this.accept(response);
            if (event !== undefined) yield event;
            if (this.closed) return;
            listen();
          }
        } catch (err) {
          if (this.closed) return;
          const e = DriftdError.fromServiceError(err as Error);
          if (!RETRYABLE.has(e.code)) throw e;
        } finally {
          clearTimeout(silence);
          call.cancel(); // no-op when it already ended; stops the call when the consumer breaks out
          this.call = null;
        }
        if (this.closed) return;
        this.reconnects += 1;
        const delay = this.backoffMs * (0.5 + Math.random());
        this.backoffMs = Math.min(this.backoffMs * 2, 10_000);
        await new Promise<void>((resolve) => {
          const t = setTimeout(resolve, delay);
          this.sleeping = () => { clearTimeout(t); resolve(); };
        });
        this.sleeping = null;
      }
    } finally {
      this.iterating = false;
    }
  }
}

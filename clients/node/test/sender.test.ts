// The sender against a scripted in-process IngestService (no driftd): retry backoff that grows past
// the server's RetryInfo floor, the ack clock only for batches on the wire, a stream error's
// RetryInfo honoured before reconnecting, the ack-timeout message kept, and rows dropped after a
// fatal stream error.
import assert from "node:assert/strict";
import { test } from "node:test";
import { credentials, Metadata, Server, ServerCredentials, status as GrpcStatus } from "@grpc/grpc-js";
import type { ServerDuplexStream } from "@grpc/grpc-js";
import { Code, DriftdError } from "../src";
import { IngestServiceClient, IngestServiceService, StreamBatchesRequest, StreamBatchesResponse } from "../src/gen/driftd/v1/ingest";
import { RetryInfo } from "../src/gen/google/rpc/error_details";
import { Status } from "../src/gen/google/rpc/status";
import { buildItem, ClientSchema } from "../src/rows";
import { BatchSender, retryDelay, SenderOptions } from "../src/sender";

type Call = ServerDuplexStream<StreamBatchesRequest, StreamBatchesResponse>;
/** Called for every batch received: stream number (0-based), the call, the batch sequence, and how often that sequence arrived. */
type Script = (stream: number, call: Call, seq: number, seen: number) => void;

const schema = new ClientSchema(["a"], [], [], [], []);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function retryStatus(code: number, delayMs: number): Status {
  const retry = RetryInfo.encode({ retryDelay: { seconds: Math.floor(delayMs / 1000), nanos: (delayMs % 1000) * 1e6 } }).finish();
  return { code, message: "busy", details: [{ typeUrl: "type.googleapis.com/google.rpc.RetryInfo", value: Buffer.from(retry) }] };
}

function ack(call: Call, seq: number, st?: Status): void {
  call.write({ ack: { producerId: "p", sequence: seq, acceptedRows: st ? 0 : 1, rejectedRows: 0, status: st, duplicate: false } } as never);
}

async function withFake(script: Script, opts: Partial<SenderOptions>,
  body: (sender: BatchSender, log: { streams: number[]; batches: { seq: number; t: number }[] }) => Promise<void>): Promise<void> {
  const log = { streams: [] as number[], batches: [] as { seq: number; t: number }[] };
  const seen = new Map<number, number>();
  const server = new Server();
  server.addService(IngestServiceService, {
    streamBatches: (call: Call) => {
      const stream = log.streams.length;
      log.streams.push(Date.now());
      call.on("data", (req: StreamBatchesRequest) => {
        const seq = req.batch!.sequence;
        const n = (seen.get(seq) ?? 0) + 1;
        seen.set(seq, n);
        log.batches.push({ seq, t: Date.now() });
        script(stream, call, seq, n);
      });
      call.on("end", () => call.end());
      call.on("error", () => undefined);
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const channel = new IngestServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  const sender = new BatchSender(channel, "monitors/m", schema, "p", new Metadata(), {
    bufferRows: 10_000, minBatchBytes: 1, maxBatchBytes: 1 << 20, lingerMs: 1, maxUnacked: 8, ackTimeoutMs: 5000, ...opts,
  });
  try {
    await body(sender, log);
  } finally {
    await sender.close(100);
    channel.close();
    server.forceShutdown();
  }
}

test("retryDelay: grows per attempt, capped at 5 s, never below the server's delay", () => {
  for (let i = 0; i < 50; i++) {
    assert.ok(retryDelay(1, 50) >= 50 && retryDelay(1, 50) <= 50);
    const d4 = retryDelay(4, 50);
    assert.ok(d4 >= 200 && d4 <= 400, String(d4));
    assert.ok(retryDelay(30, undefined) <= 5000);
    assert.ok(retryDelay(30, 8000) === 8000);
  }
});

test("a batch the server keeps refusing with RetryInfo 50 ms is resent with a growing delay", async () => {
  await withFake((_s, call, seq) => ack(call, seq, retryStatus(Code.RESOURCE_EXHAUSTED, 50)), {}, async (sender, log) => {
    sender.enqueue(buildItem(schema, { features: { a: 1 } }));
    await sleep(1500);
    const sends = log.batches.filter((b) => b.seq === 1).map((b) => b.t);
    // a fixed 50 ms would be ~30 sends; 50, 100, 200, 400, 800 ms (jittered) is at most ~7
    assert.ok(sends.length >= 3 && sends.length <= 8, `sent ${sends.length} times`);
    const gaps = sends.slice(1).map((t, i) => t - sends[i]);
    assert.ok(gaps[gaps.length - 1] > gaps[0], `gaps ${gaps}`);
    assert.equal(sender.stats.reconnects, 0);
  });
});

test("the ack timeout does not count time a batch spends waiting out a retry delay", async () => {
  await withFake((_s, call, seq, seen) => ack(call, seq, seen === 1 ? retryStatus(Code.RESOURCE_EXHAUSTED, 1200) : undefined),
    { ackTimeoutMs: 300 }, async (sender, log) => {
      sender.enqueue(buildItem(schema, { features: { a: 1 } }));
      await sleep(100);
      sender.enqueue(buildItem(schema, { features: { a: 2 } }));
      assert.equal(await sender.flush(5000), true);
      assert.equal(sender.stats.reconnects, 0, String(sender.stats.lastError));
      assert.equal(log.streams.length, 1);
      const resend = log.batches.filter((b) => b.seq === 1);
      assert.equal(resend.length, 2);
      assert.ok(resend[1].t - resend[0].t >= 1100, `resent after ${resend[1].t - resend[0].t} ms`);
      assert.equal(sender.stats.rowsAcked, 2);
    });
});

test("a stream error's RetryInfo is waited out before reconnecting", async () => {
  await withFake((stream, call, seq) => {
    if (stream === 0) {
      const md = new Metadata();
      md.set("grpc-status-details-bin", Buffer.from(Status.encode(retryStatus(GrpcStatus.UNAVAILABLE, 1500)).finish()));
      call.emit("error", { code: GrpcStatus.UNAVAILABLE, details: "shedding load", metadata: md });
    } else ack(call, seq);
  }, {}, async (sender, log) => {
    sender.enqueue(buildItem(schema, { features: { a: 1 } }));
    assert.equal(await sender.flush(8000), true);
    assert.equal(log.streams.length, 2);
    const waited = log.streams[1] - log.batches[0].t;
    assert.ok(waited >= 1400, `reconnected after ${waited} ms`);
    assert.equal(sender.stats.reconnects, 1);
  });
});

test("an ack timeout says so (not 'stream: CANCELLED')", async () => {
  await withFake(() => undefined, { ackTimeoutMs: 200 }, async (sender) => {
    sender.enqueue(buildItem(schema, { features: { a: 1 } }));
    await sleep(350);
    assert.match(String(sender.stats.lastError), /no ack for 200 ms/);
  });
});

test("after UNAUTHENTICATED, flush rejects and new rows are dropped and counted", async () => {
  await withFake((_s, call) => call.emit("error", { code: GrpcStatus.UNAUTHENTICATED, details: "bad token", metadata: new Metadata() }), {},
    async (sender) => {
      assert.equal(sender.enqueue(buildItem(schema, { features: { a: 1 } })), true);
      await assert.rejects(sender.flush(5000), (e: unknown) => e instanceof DriftdError && e.code === Code.UNAUTHENTICATED);
      const dropped = sender.stats.rowsDropped;
      assert.equal(sender.enqueue(buildItem(schema, { features: { a: [1, 2, 3] } })), false);
      assert.equal(sender.stats.rowsDropped, dropped + 3);
    });
});

test("flush() under steady logging resolves once the rows logged before it are acked", async () => {
  // acks take 20 ms and a row comes every 5 ms: the buffer and the unacked set are never both empty
  await withFake((_s, call, seq) => { setTimeout(() => ack(call, seq), 20); }, {}, async (sender) => {
    let stop = false;
    const pump = (async () => {
      while (!stop) {
        sender.enqueue(buildItem(schema, { features: { a: 1 } }));
        await sleep(5);
      }
    })();
    try {
      await sleep(100);
      const before = sender.stats.rowsLogged;
      const t0 = Date.now();
      assert.equal(await sender.flush(3000), true);
      assert.ok(Date.now() - t0 < 1000, `flush took ${Date.now() - t0} ms`);
      assert.ok(sender.stats.rowsAcked >= before, `acked ${sender.stats.rowsAcked} < ${before} logged before flush`);
    } finally {
      stop = true;
      await pump;
    }
  });
});

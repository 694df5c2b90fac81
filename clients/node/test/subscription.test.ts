// An alarm stream that goes silent (no event, no heartbeat: a dead connection that did not say so)
// is cancelled after silenceLimitMs and resubscribed; a consumer that holds an event longer than
// the limit does not trip it. Against a scripted in-process AlarmService (no driftd).
import assert from "node:assert/strict";
import { test } from "node:test";
import { credentials, Metadata, Server, ServerCredentials } from "@grpc/grpc-js";
import type { ServerWritableStream } from "@grpc/grpc-js";
import { AlarmSubscription, silenceLimitMs } from "../src";
import { AlarmServiceClient, AlarmServiceService, SubscribeAlarmsRequest, SubscribeAlarmsResponse } from "../src/gen/driftd/v1/alarm";

type Call = ServerWritableStream<SubscribeAlarmsRequest, SubscribeAlarmsResponse>;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** `script(n, call)` runs for the n-th subscription (0-based); the call stays open unless it ends it. */
async function withAlarms(script: (n: number, call: Call) => void,
  body: (stub: AlarmServiceClient, subscriptions: () => number) => Promise<void>): Promise<void> {
  let n = 0;
  const server = new Server();
  server.addService(AlarmServiceService, {
    subscribeAlarms: (call: Call) => {
      call.on("error", () => undefined);
      script(n++, call);
    },
  } as never);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync("127.0.0.1:0", ServerCredentials.createInsecure(), (err, p) => (err ? reject(err) : resolve(p))));
  const stub = new AlarmServiceClient(`127.0.0.1:${port}`, credentials.createInsecure());
  try {
    await body(stub, () => n);
  } finally {
    stub.close();
    server.forceShutdown();
  }
}

const event = (sequence: number) => SubscribeAlarmsResponse.fromPartial({ message: { $case: "event", value: { sequence, ruleId: "r" } } });

test("silenceLimitMs: three missed heartbeats plus a second", () => {
  assert.equal(silenceLimitMs(5000), 16_000);
  assert.equal(silenceLimitMs(100), 1300);
});

test("a silent stream is reopened after the silence limit", { timeout: 30_000 }, async () => {
  await withAlarms((n, call) => { if (n > 0) call.write(event(1)); }, async (stub, subscriptions) => {
    const sub = new AlarmSubscription(stub, new Metadata(), { heartbeatMs: 100 });
    const t0 = Date.now();
    for await (const e of sub) {
      const waited = Date.now() - t0;
      assert.equal(e.sequence, 1);
      assert.equal(subscriptions(), 2);
      assert.equal(sub.reconnects, 1);
      assert.ok(waited >= silenceLimitMs(100) && waited < silenceLimitMs(100) + 5000, String(waited));
      break;
    }
  });
});

test("a consumer holding an event past the limit does not reopen the stream", { timeout: 30_000 }, async () => {
  await withAlarms((_n, call) => {
    call.write(event(1));
    setTimeout(() => call.write(event(2)), 50); // buffered while the consumer holds event 1
  }, async (stub, subscriptions) => {
    const sub = new AlarmSubscription(stub, new Metadata(), { heartbeatMs: 100 });
    const got: number[] = [];
    for await (const e of sub) {
      got.push(e.sequence);
      if (got.length === 2) break;
      await sleep(silenceLimitMs(100) + 500);
    }
    assert.deepEqual(got, [1, 2]);
    assert.equal(subscriptions(), 1);
    assert.equal(sub.reconnects, 0);
  });
});

// The client against a live driftd: streaming rows then a snapshot whose counts match, exactly-once
// delivery across a server restart, labels, and errors surfacing as DriftdError.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { Client, Code, DriftdError, MonitorHandle, v1 } from "../src";
import { normals, Served, waitFor } from "./support";

let served: Served;
let client: Client;

before(async () => {
  served = await Served.start();
  client = new Client(served.target, { lingerMs: 20 });
});

after(async () => {
  await client?.close(5000);
  await served?.dispose();
});

async function makeMonitor(id: string, extra: Parameters<Client["createMonitor"]>[1] = {}): Promise<MonitorHandle> {
  await client.createMonitor(id, {
    numeric: ["amount", "age"], categorical: { country: ["de", "fr", "us"] }, scores: ["p"],
    paneSeconds: 60, paneCount: 5, evaluationSeconds: 0.2, ...extra,
  });
  const n = 2000;
  const country = Array.from({ length: n }, (_, i) => ["de", "fr", "us"][i % 3]);
  await client.createBaseline(id, {
    features: { amount: normals(n, 1, 100, 10), age: normals(n, 2, 40, 8), country },
    scores: normals(n, 3, 0.5, 0.1),
  }, { seed: 7 });
  return client.monitor(id);
}

/** The first snapshot (from WatchSnapshots) whose row count reaches `rows`. */
async function snapshotWithRows(handle: MonitorHandle, rows: number, timeoutMs = 20_000): Promise<v1.snapshot.Snapshot> {
  // a wall-clock deadline that holds even when no snapshot arrives at all
  const deadline = Date.now() + timeoutMs;
  const it = handle.watchSnapshots();
  let last = -1;
  try {
    for (;;) {
      const remaining = deadline - Date.now();
      if (remaining <= 0) break;
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<"timeout">((resolve) => { timer = setTimeout(() => resolve("timeout"), remaining); });
      const r = await Promise.race([it.next(), timeout]);
      clearTimeout(timer);
      if (r === "timeout" || r.done) break;
      last = r.value.rowCount;
      if (r.value.rowCount >= rows) return r.value;
    }
  } finally {
    void it.return(undefined).catch(() => undefined); // does not wait for a pending next()
  }
  throw new Error(`no snapshot with ${rows} rows within ${timeoutMs} ms (last row count ${last})`);
}

describe("streaming", () => {
  test("single rows and blocks arrive once; the snapshot counts them", async () => {
    const m = await makeMonitor("stream-counts");
    let sent = 0;
    for (let i = 0; i < 500; i++) {
      assert.equal(m.log({ features: { amount: 100 + (i % 7), age: 30 + (i % 20), country: ["de", "fr", "us", "xx"][i % 4] },
        scores: [0.4], latencyMs: 10 + (i % 5), statusCodes: i % 50 === 0 ? 503 : 200, requestIds: `r${i}` }), true);
      sent += 1;
    }
    const n = 3000;
    m.log({ features: { amount: normals(n, 11, 100, 10), age: normals(n, 12, 40, 8), country: Array.from({ length: n }, () => "fr") },
      scores: normals(n, 13, 0.5, 0.1) });
    sent += n;
    assert.equal(await m.flush(10_000), true);
    const st = m.stats();
    assert.equal(st.rowsLogged, sent);
    assert.equal(st.rowsAcked, sent);
    assert.equal(st.rowsSent, sent);
    assert.equal(st.rowsRejected + st.rowsDropped, 0);
    const snap = await snapshotWithRows(m, sent);
    assert.equal(snap.rowCount, sent);
    const amount = snap.numericFeatures.find((f) => f.feature === "amount")!;
    assert.equal(amount.sampleCount, sent);
    const country = snap.categoricalFeatures.find((f) => f.feature === "country")!;
    assert.equal(country.sampleCount, sent);
    // 125 single rows had the unseen name "xx" (code K = 3)
    assert.ok(Math.abs(country.unseenRate!.value - 125 / sent) < 1e-9, `unseen rate ${country.unseenRate!.value}`);
    // latency / status came only with the single rows: the block (without them) goes in its own batch, no row loses its latency
    assert.equal(snap.latency!.errorCount, 10);
    const latest = await m.snapshot();
    assert.ok(latest.rowCount >= sent);
  });

  test("a numeric-only monitor takes a row-major Float32Array block; big blocks are split across batches", async () => {
    await client.createMonitor("stream-matrix", { numeric: ["a", "b", "c", "d"], paneSeconds: 60, paneCount: 5, evaluationSeconds: 0.2 });
    await client.createBaseline("stream-matrix", { features: normals(4 * 1000, 5) });
    const m = await client.monitor("stream-matrix");
    const small = new Client(served.target, { maxBatchBytes: 64 * 1024, minBatchBytes: 16 * 1024 });
    try {
      const h = await small.monitor("stream-matrix");
      const rows = 20_000;
      assert.equal(h.log({ features: normals(4 * rows, 6) }), true);
      assert.equal(await h.flush(20_000), true);
      const st = h.stats();
      assert.equal(st.rowsAcked, rows);
      // 40 bytes a row on the wire (4 floats + overhead): a 64 KiB cap means at least 13 batches
      assert.equal(h.schema.rowBytes, 40);
      assert.ok(st.batchesSent >= Math.ceil((rows * 40) / (64 * 1024)), `batches ${st.batchesSent}`);
      const snap = await snapshotWithRows(m, rows);
      assert.equal(snap.rowCount, rows);
    } finally {
      await small.close(5000);
    }
  });

  test("a full buffer drops and counts instead of blocking or throwing", async () => {
    await client.createMonitor("stream-drop", { numeric: ["x"], paneSeconds: 60, paneCount: 5 });
    await client.createBaseline("stream-drop", { features: { x: normals(1000, 8) } });
    const tiny = new Client(served.target, { bufferRows: 100, lingerMs: 10_000, minBatchBytes: 1 << 30 });
    try {
      const h = await tiny.monitor("stream-drop");
      const results = Array.from({ length: 150 }, (_, i) => h.log({ features: { x: i } }));
      assert.equal(results.filter((r) => r).length, 100);
      assert.equal(h.stats().rowsDropped, 50);
      assert.equal(await h.flush(10_000), true);
      assert.equal(h.stats().rowsAcked, 100);
    } finally {
      await tiny.close(5000);
    }
  });

  test("labels join by request id", async () => {
    const m = await makeMonitor("labels");
    for (let i = 0; i < 40; i++) {
      m.log({ features: { amount: 100, age: 40, country: "de" }, scores: [i % 2 ? 0.9 : 0.1], requestIds: `q${i}` });
    }
    const res = await m.logLabels([...Array.from({ length: 40 }, (_, i) => `q${i}`), "never-logged"], [...Array.from({ length: 40 }, (_, i) => i % 2), 1]);
    assert.equal(res.matched, 40);
    assert.equal(res.unmatched, 1);
  });
});

describe("flush under steady logging", () => {
  test("flush() waits for the rows logged before it, not for the buffer to drain", async () => {
    const m = await makeMonitor("flush-steady");
    const c = new Client(served.target, { lingerMs: 20 });
    try {
      const h = await c.monitor("flush-steady");
      const row = (i: number) => ({ features: { amount: 100 + (i % 7), age: 30, country: "de" }, scores: [0.5] });
      for (let i = 0; i < 200; i++) h.log(row(i));
      let stop = false;
      let i = 0;
      const pump = (async () => {
        while (!stop) {
          h.log(row(i++));
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      try {
        await new Promise((r) => setTimeout(r, 100));
        const before = h.stats().rowsLogged;
        const t0 = Date.now();
        assert.equal(await h.flush(10_000), true);
        const took = Date.now() - t0;
        assert.ok(took < 3000, `flush took ${took} ms`);
        assert.ok(h.stats().rowsAcked >= before, `acked ${h.stats().rowsAcked} < logged before flush ${before}`);
        // logLabels flushes first: it must not sit out its whole timeout either
        const t1 = Date.now();
        await h.logLabels(["none"], [1], 10_000);
        assert.ok(Date.now() - t1 < 3000, `logLabels took ${Date.now() - t1} ms`);
      } finally {
        stop = true;
        await pump;
      }
      assert.equal(await h.flush(10_000), true);
      assert.equal(h.stats().rowsAcked, h.stats().rowsLogged);
    } finally {
      await c.close(5000);
    }
    void m;
  });
});

describe("exactly once across a restart", () => {
  test("rows logged while the server restarts are all counted once", async () => {
    await client.createMonitor("restart", { numeric: ["x", "y"], paneSeconds: 600, paneCount: 2, evaluationSeconds: 0.2 });
    await client.createBaseline("restart", { features: normals(2 * 2000, 21) });
    const c = new Client(served.target, { lingerMs: 5, minBatchBytes: 4096, ackTimeoutMs: 5000 });
    try {
      const h = await c.monitor("restart");
      let total = 0;
      const pump = (async () => {
        for (let i = 0; i < 60; i++) {
          const n = 500;
          assert.equal(h.log({ features: normals(2 * n, 100 + i) }), true);
          total += n;
          await new Promise((r) => setTimeout(r, 25));
        }
      })();
      await new Promise((r) => setTimeout(r, 300));
      await served.restart();
      await pump;
      assert.equal(await h.flush(30_000), true);
      const st = h.stats();
      assert.equal(st.rowsAcked, total);
      assert.equal(st.rowsRejected + st.rowsDropped, 0);
      assert.ok(st.reconnects >= 1, `reconnects ${st.reconnects}`);
      const m = await client.monitor("restart");
      const snap = await snapshotWithRows(m, total);
      assert.equal(snap.rowCount, total, "every row counted exactly once");
    } finally {
      await c.close(5000);
    }
  });
});

describe("errors are DriftdError with code, reason and fields", () => {
  test("unknown feature: thrown by log() at once, naming the field", async () => {
    const m = await makeMonitor("err-feature");
    assert.throws(() => m.log({ features: { amount: 1, colour: "red" }, scores: [0.1] }), (e: unknown) => {
      assert.ok(e instanceof DriftdError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.equal(e.reason, "UNKNOWN_FEATURE");
      assert.deepEqual(e.fieldViolations.map((v) => v.field), ["features.colour"]);
      return true;
    });
    assert.throws(() => m.log({ features: { amount: [1, 2], age: [1] }, scores: [0.1, 0.2] }),
      (e: unknown) => e instanceof DriftdError && e.fieldViolations[0].field === "rows");
  });

  test("wrong monitor: NOT_FOUND", async () => {
    await assert.rejects(client.monitor("no-such-monitor"), (e: unknown) => {
      assert.ok(e instanceof DriftdError);
      assert.equal(e.code, Code.NOT_FOUND);
      assert.notEqual(e.reason, "");
      return true;
    });
    const sub = client.subscribeAlarms({ monitor: "Bad Name!", startAfter: 0 });
    await assert.rejects((async () => { for await (const _ of sub) break; })(), (e: unknown) => {
      assert.ok(e instanceof DriftdError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.deepEqual(e.fieldViolations.map((v) => v.field), ["monitors[0]"]);
      return true;
    });
  });

  test("invalid monitor spec: INVALID_ARGUMENT with the field", async () => {
    await assert.rejects(client.createMonitor("bad-spec", { numeric: ["x", "x"] }), (e: unknown) => {
      assert.ok(e instanceof DriftdError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.ok(e.fieldViolations.length >= 1);
      assert.ok(e.fieldViolations.some((v) => v.field.startsWith("monitor.schema")), JSON.stringify(e.fieldViolations));
      return true;
    });
    await assert.rejects(client.createMonitor("Not A Valid Id", { numeric: ["x"] }), (e: unknown) =>
      e instanceof DriftdError && e.code === Code.INVALID_ARGUMENT && e.fieldViolations.some((v) => v.field === "monitor_id"));
    await makeMonitor("dup-id");
    await assert.rejects(client.createMonitor("dup-id", { numeric: ["x"] }), (e: unknown) =>
      e instanceof DriftdError && e.code === Code.ALREADY_EXISTS);
  });

  test("a batch the server refuses is rejected in its ack: counted, with the error's field", async () => {
    const m = await makeMonitor("err-stale");
    // a handle whose schema is stale (one numeric column too many): the server's BatchAck says why
    const stale = new MonitorHandle(client, { ...m.monitor, schema: { ...m.monitor.schema!,
      numericFeatures: [...m.monitor.schema!.numericFeatures, { name: "extra", validMin: undefined, validMax: undefined }] } });
    try {
      stale.log({ features: { amount: 1, age: 2, extra: 3, country: "de" }, scores: [0.5] });
      assert.equal(await stale.flush(10_000), true);
      const st = stale.stats();
      assert.equal(st.rowsRejected, 1);
      assert.equal(st.rowsAcked, 0);
      const e = st.lastRejection!;
      assert.ok(e instanceof DriftdError);
      assert.equal(e.code, Code.INVALID_ARGUMENT);
      assert.ok(e.fieldViolations.some((v) => v.field.startsWith("batch.numeric")), JSON.stringify(e.fieldViolations));
    } finally {
      await stale.close(1000);
    }
    // and a deleted monitor: the ack says NOT_FOUND
    const gone = await makeMonitor("err-gone");
    await client.deleteMonitor("err-gone");
    gone.log({ features: { amount: 1, age: 2, country: "de" }, scores: [0.5] });
    assert.equal(await gone.flush(10_000), true);
    assert.equal(gone.stats().rowsRejected, 1);
    assert.equal(gone.stats().lastRejection!.code, Code.NOT_FOUND);
  });
});

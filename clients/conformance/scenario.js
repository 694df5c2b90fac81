#!/usr/bin/env node
// The Node half of the conformance run (clients/conformance/run.py starts it):
//   node scenario.js TARGET MONITOR_ID SCENARIO.json OUT.json
// Creates its monitor and baseline with @driftd/client, then in lock-step with the server's
// evaluations logs each step (single rows or column blocks, as the Python side does), flushes, and
// takes the next evaluation from watchSnapshots(); collects the monitor's alarm events with
// subscribeAlarms(). Writes snapshots, events and the monitor as base64 protobuf for exact comparison.
// Exit 3: the lock-step broke (an evaluation saw a different row count: timing, retried by run.py).
"use strict";
const fs = require("node:fs");
const path = require("node:path");
const { Client } = require(path.join(__dirname, "..", "node", "dist", "src"));
const { AlarmRule, Monitor, StatisticsConfig } = require(path.join(__dirname, "..", "node", "dist", "src", "gen", "driftd", "v1", "monitor"));
const { AlarmEvent } = require(path.join(__dirname, "..", "node", "dist", "src", "gen", "driftd", "v1", "alarm"));
const { Snapshot } = require(path.join(__dirname, "..", "node", "dist", "src", "gen", "driftd", "v1", "snapshot"));

class LockstepBroken extends Error {}

const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const f32 = (values) => Float32Array.from(values, (v) => (v === null ? NaN : v));

function columns(sc, rows) {
  const n = rows.scores.length;
  const k = sc.numeric.length;
  const cols = {};
  sc.numeric.forEach((name, j) => {
    const col = new Float32Array(n);
    for (let i = 0; i < n; i++) col[i] = rows.numeric[i * k + j] === null ? NaN : rows.numeric[i * k + j];
    cols[name] = col;
  });
  cols.country = rows.country;
  return cols;
}

function logStep(handle, sc, step) {
  const r = step.rows;
  const n = r.scores.length;
  const k = sc.numeric.length;
  const d = sc.embedDim;
  if (step.mode === "rows") {
    for (let i = 0; i < n; i++) {
      const features = {};
      sc.numeric.forEach((name, j) => { features[name] = r.numeric[i * k + j] === null ? NaN : r.numeric[i * k + j]; });
      features.country = r.country[i];
      const ok = handle.log({ features, embeddings: { emb: r.emb.slice(i * d, (i + 1) * d) }, scores: [r.scores[i]],
        latencyMs: r.latency[i], statusCodes: r.status[i], requestIds: r.request_ids[i] });
      if (!ok) throw new Error("log() dropped a row");
    }
  } else {
    const ok = handle.log({ features: columns(sc, r), embeddings: { emb: f32(r.emb) }, scores: f32(r.scores), latencyMs: f32(r.latency),
      statusCodes: Int32Array.from(r.status), requestIds: r.request_ids });
    if (!ok) throw new Error("log() dropped a block");
  }
}

async function main() {
  const [target, monitorId, scenarioPath, outPath] = process.argv.slice(2);
  const sc = JSON.parse(fs.readFileSync(scenarioPath, "utf8"));
  const client = new Client(target, { lingerMs: 20 });
  try {
    const categorical = { country: sc.categories };
    await client.createMonitor(monitorId, {
      numeric: sc.numeric, categorical, embeddings: { emb: sc.embedDim }, scores: ["p"],
      paneSeconds: sc.paneSeconds, paneCount: 2, evaluationSeconds: sc.evaluationSeconds,
      statistics: StatisticsConfig.decode(Buffer.from(sc.statistics, "base64")),
      rules: sc.rules.map((r) => AlarmRule.decode(Buffer.from(r, "base64"))),
    });
    const b = sc.baseline;
    await client.createBaseline(monitorId, { features: columns(sc, b), embeddings: { emb: f32(b.emb) }, scores: f32(b.scores) }, { seed: 0 });
    const handle = await client.monitor(monitorId);
    const sub = client.subscribeAlarms({ startAfter: 0, monitor: monitorId, heartbeatMs: 100 });
    const events = [];
    const reader = (async () => { for await (const e of sub) events.push(e); })();
    const watch = handle.watchSnapshots();
    const next = async () => {
      const r = await watch.next();
      if (r.done) throw new Error("the snapshot watch ended");
      return r.value;
    };
    const snaps = [await next()];
    if (snaps[0].rowCount !== 0) throw new LockstepBroken(`node: first evaluation saw ${snaps[0].rowCount} rows, expected 0`);
    let total = 0;
    for (let k = 0; k < sc.steps.length; k++) {
      logStep(handle, sc, sc.steps[k]);
      if (!(await handle.flush(30_000))) throw new Error(`node: flush timed out ${JSON.stringify(handle.stats())}`);
      total += sc.steps[k].rows.scores.length;
      const snap = await next();
      if (snap.rowCount !== total) throw new LockstepBroken(`node: evaluation ${k + 1} saw ${snap.rowCount} rows, expected ${total}`);
      snaps.push(snap);
    }
    await next(); // published only after the alarm events of the previous evaluation are in the log
    await watch.return(undefined);
    const h0 = sub.heartbeats;
    const deadline = Date.now() + 30_000;
    while (sub.heartbeats < h0 + 3) {
      if (Date.now() > deadline) throw new Error("node: no heartbeats from the alarm subscription");
      await new Promise((r) => setTimeout(r, 50));
    }
    sub.close();
    await reader;
    const st = handle.stats();
    if (st.rowsAcked !== total || st.rowsDropped || st.rowsRejected) throw new Error(`node: sender stats ${JSON.stringify(st)}`);
    const monitor = await client.getMonitor(monitorId);
    fs.writeFileSync(outPath, JSON.stringify({
      snapshots: snaps.map((s) => b64(Snapshot.encode(s).finish())),
      events: events.map((e) => b64(AlarmEvent.encode(e).finish())),
      monitor: b64(Monitor.encode(monitor).finish()),
    }));
  } finally {
    await client.close(5000);
  }
}

main().then(() => process.exit(0), (err) => {
  console.error(err instanceof LockstepBroken ? err.message : err);
  process.exit(err instanceof LockstepBroken ? 3 : 1);
});

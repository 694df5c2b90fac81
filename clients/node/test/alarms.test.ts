// Alarm subscription against live traffic: drift fires an alarm, the server restarts (the stream
// breaks), the subscription resumes from its last sequence; what it yielded equals a full replay of
// the log: no gap, no duplicate, in order.
import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import { AlarmEvent, AlarmState, Client, Code, Direction, DriftdError, Severity } from "../src";
import { normals, Served, waitFor } from "./support";

let served: Served;
let client: Client;

before(async () => {
  served = await Served.start();
  client = new Client(served.target, { lingerMs: 10 });
});

after(async () => {
  await client?.close(5000);
  await served?.dispose();
});

const ID = "alarmed";

async function setup(): Promise<void> {
  await client.createMonitor(ID, {
    numeric: ["x"], paneSeconds: 0.5, paneCount: 2, evaluationSeconds: 0.2,
    rules: [{
      ruleId: "x-psi", condition: { $case: "metric", value: { selector: 'feature_psi{feature="x"}', direction: Direction.DIRECTION_ABOVE,
        threshold: { $case: "fixedThreshold", value: 1.0 }, maxPValue: undefined } },
      minSamples: 20, forEvaluations: 0, cooldown: undefined, keepFiringFor: undefined, severity: Severity.SEVERITY_P2, labels: { team: "risk" },
      summary: "psi of x is {value}", runbook: "",
    }],
  });
  await client.createBaseline(ID, { features: { x: normals(3000, 1) } });
}

test("resumes after a server restart without gaps or duplicates", { timeout: 90_000 }, async () => {
  await setup();
  const monitor = await client.monitor(ID);
  const sub = client.subscribeAlarms({ startAfter: 0, monitor: ID, severity: "P2", heartbeatMs: 100 });
  const got: AlarmEvent[] = [];
  const reader = (async () => {
    for await (const e of sub) got.push(e);
  })();
  let seed = 100;
  let logging = true;
  let paused = false;
  const normalTraffic = (async () => {
    while (logging) {
      if (!paused) monitor.log({ features: { x: normals(40, seed++) } });
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  const firings = () => got.filter((e) => e.state === AlarmState.ALARM_STATE_FIRING).length;
  const resolved = () => got.filter((e) => e.state === AlarmState.ALARM_STATE_RESOLVED).length;
  const describe = () => JSON.stringify({ stats: monitor.stats(), sub: [sub.reconnects, sub.lastSequence, sub.highWater],
    got: got.map((x) => [x.sequence, x.previousState, x.state]) });
  try {
    monitor.log({ features: { x: normals(800, seed++, 6) } });
    await waitFor("first firing", async () => (firings() >= 1 ? true : undefined));
    await waitFor("resolution", async () => (resolved() >= 1 ? true : undefined));
    const before = got.length;

    // the subscription and the ingest stream break; log() keeps taking rows while the server is down
    paused = true;
    await served.stop();
    assert.equal(monitor.log({ features: { x: normals(40, seed++) } }), true);
    await served.startProcess();
    assert.equal(await monitor.flush(20_000), true);
    // the restarted server rebuilds the monitor's runtime (seconds on a small machine) and then takes
    // the backlog in one go: wait for its first evaluation, then let the window turn over (2 panes
    // of 0.5 s), so the drift below is not diluted by the backlog
    for await (const _ of monitor.watchSnapshots()) break;
    await new Promise((r) => setTimeout(r, 1200));
    paused = false;
    monitor.log({ features: { x: normals(800, seed++, 6) } });
    await waitFor("firing after the restart", async () => (firings() >= 2 ? true : undefined), 30_000)
      .catch((e) => { throw new Error(`${e.message}: ${describe()}`); });
    await waitFor("second resolution", async () => (resolved() >= 2 ? true : undefined), 30_000);
    assert.ok(got.length > before);
    assert.equal(await monitor.flush(10_000), true);

    // a forced cancel of the current call: the subscription resumes as well
    const reconnects = sub.reconnects;
    sub.disconnect();
    await waitFor("reconnect after disconnect()", async () => (sub.reconnects > reconnects ? true : undefined));
    monitor.log({ features: { x: normals(800, seed++, 6) } });
    await waitFor("firing after disconnect()", async () => (firings() >= 3 ? true : undefined), 30_000);

    assert.ok(sub.reconnects >= 2, `reconnects ${sub.reconnects}`);
    const seqs = got.map((e) => e.sequence);
    assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), "in order");
    assert.equal(new Set(seqs).size, seqs.length, "no duplicate");
    assert.ok(got.every((e) => e.monitor === `monitors/${ID}` && e.ruleId === "x-psi" && e.severity === Severity.SEVERITY_P2));
    assert.equal(got[0].labels.feature, "x", JSON.stringify(got[0].labels));

    // a fresh replay of the whole log: exactly what the resumed subscription yielded (no gap)
    const last = seqs[seqs.length - 1];
    const replay: AlarmEvent[] = [];
    const again = client.subscribeAlarms({ startAfter: 0, monitor: ID, heartbeatMs: 100 });
    for await (const e of again) {
      replay.push(e);
      if (e.sequence >= last) break;
    }
    assert.deepEqual(replay.map((e) => [e.sequence, e.previousState, e.state]), got.slice(0, replay.length).map((e) => [e.sequence, e.previousState, e.state]));
    assert.equal(replay.length, got.filter((e) => e.sequence <= last).length);
    // heartbeats carried the high-water mark
    assert.ok(sub.highWater >= last);
  } finally {
    logging = false;
    await normalTraffic;
    sub.close();
    await reader;
  }
});

test("live-only subscription and bad filters", { timeout: 30_000 }, async () => {
  const live = client.subscribeAlarms({ monitor: ID, heartbeatMs: 50 });
  const it = live[Symbol.asyncIterator]();
  const first = it.next();
  await waitFor("a heartbeat", async () => (live.heartbeats > 0 ? true : undefined));
  assert.equal(live.lastSequence, undefined, "no replay without startAfter");
  // no event seen yet: a reconnect resumes from the last heartbeat's high-water mark, so events
  // that happen while disconnected are not lost (and nothing older is replayed)
  assert.equal(live.cursor, live.highWater);
  assert.equal(live.request().startAfterSequence, live.highWater);
  const seen = live.heartbeats;
  live.disconnect();
  await waitFor("a heartbeat after the reconnect", async () => (live.heartbeats > seen && live.reconnects >= 1 ? true : undefined));
  assert.equal(live.lastSequence, undefined, "nothing replayed after the reconnect");
  live.close();
  assert.deepEqual(await first, { done: true, value: undefined });
  const bad = client.subscribeAlarms({ severity: "P9" });
  await assert.rejects((async () => { for await (const _ of bad) break; })(), (e: unknown) =>
    e instanceof DriftdError && e.code === Code.INVALID_ARGUMENT && e.fieldViolations[0].field === "severity");
});

test("resume cursor: max(last event, last heartbeat high water); undefined until either exists", async () => {
  const { AlarmSubscription } = await import("../src/alarms");
  const live = new AlarmSubscription(null as never, null as never, {});
  assert.equal(live.request().startAfterSequence, undefined);
  live.accept({ message: { $case: "heartbeat", value: { highWaterSequence: 7 } } } as never);
  assert.equal(live.request().startAfterSequence, 7);
  assert.equal(live.accept({ message: { $case: "event", value: { sequence: 9 } } } as never)?.sequence, 9);
  assert.equal(live.request().startAfterSequence, 9);
  live.accept({ message: { $case: "heartbeat", value: { highWaterSequence: 12 } } } as never);
  assert.equal(live.request().startAfterSequence, 12);
  const replay = new AlarmSubscription(null as never, null as never, { startAfter: 0 });
  assert.equal(replay.request().startAfterSequence, 0);
});

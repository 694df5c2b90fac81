#!/usr/bin/env node
// Node half of bench/bench_node_client.py: rows/s of 32-float rows through @driftd/client's
// monitor.log() of Float32Array blocks, counted once flush() returned (every batch acknowledged).
//   node bench/bench_node_client.js TARGET MONITOR ROWS CHUNK_ROWS   -> one JSON line on stdout
"use strict";
const path = require("node:path");
const { Client } = require(path.join(__dirname, "..", "clients", "node", "dist", "src"));

async function main() {
  const [target, monitor, rowsArg, chunkArg] = process.argv.slice(2);
  const rows = Number(rowsArg);
  const chunk = Number(chunkArg);
  const features = 32;
  const data = new Float32Array(chunk * features);
  let s = 12345;
  for (let i = 0; i < data.length; i++) { s = (s * 1103515245 + 12345) % 2147483648; data[i] = s / 2147483648 - 0.5; }
  const client = new Client(target, { bufferRows: 4_000_000 });
  const h = await client.monitor(monitor);
  const cpu0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let done = 0; done < rows; done += chunk) {
    if (!h.log({ features: data })) throw new Error("dropped");
    // yield to the event loop now and then, as a server handling requests would: the sender runs there
    if ((done / chunk) % 16 === 15) await new Promise((r) => setImmediate(r));
  }
  if (!(await h.flush(300_000))) throw new Error("flush timed out");
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const cpu = process.cpuUsage(cpu0);
  const st = h.stats();
  if (st.rowsAcked !== rows || st.rowsDropped || st.rowsRejected) throw new Error(`stats ${JSON.stringify(st)}`);
  await client.close(10_000);
  console.log(JSON.stringify({ rows: st.rowsAcked, seconds, cpu_s: (cpu.user + cpu.system) / 1e6, batches: st.batchesSent, retried: st.batchesRetried }));
}

main().catch((err) => { console.error(err); process.exit(1); });

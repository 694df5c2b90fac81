// The committed src/gen is exactly what scripts/gen-protos.mjs makes from proto/driftd/v1 (as
// tests/test_protos.py checks the Python stubs): a proto change without a regeneration fails here.
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { PKG, python } from "./support";

function files(dir: string, rel = ""): string[] {
  return fs.readdirSync(path.join(dir, rel), { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? files(dir, path.join(rel, e.name)) : [path.join(rel, e.name)]).sort();
}

test("committed generated code is fresh", () => {
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "driftd-gen-check-"));
  try {
    execFileSync(process.execPath, [path.join(PKG, "scripts", "gen-protos.mjs"), "--out", tmp],
      { env: { ...process.env, PYTHON: python() }, stdio: ["ignore", "ignore", "pipe"] });
    const committed = path.join(PKG, "src", "gen");
    assert.deepEqual(files(tmp), files(committed), "generated file set differs: run npm run gen");
    const stale = files(tmp).filter((f) => !fs.readFileSync(path.join(tmp, f)).equals(fs.readFileSync(path.join(committed, f))));
    assert.deepEqual(stale, [], "stale generated code: run `npm run gen` and commit src/gen");
    // every driftd.v1 proto file has its module
    const protos = fs.readdirSync(path.join(PKG, "..", "..", "proto", "driftd", "v1")).filter((f) => f.endsWith(".proto"));
    for (const p of protos) assert.ok(files(tmp).includes(path.join("driftd", "v1", p.replace(/\.proto$/, ".ts"))), p);
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
});

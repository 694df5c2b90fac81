#!/usr/bin/env node
// Regenerate the TypeScript types and grpc-js service definitions of proto/driftd/v1 into src/gen
// (ts-proto, run by the protoc bundled with grpcio-tools). The only way src/gen is made;
// test/protos.test.ts fails when the committed copy differs from what this script produces.
//   node scripts/gen-protos.mjs [--out DIR]     (needs the project's venv: PYTHON or ../../.venv)
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
const pkg = path.resolve(here, "..");
const root = path.resolve(pkg, "..", "..");

function python() {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = path.join(root, ".venv", "bin", "python");
  return fs.existsSync(venv) ? venv : "python3";
}

export function generate(outDir) {
  const py = python();
  const wellKnown = path.join(
    execFileSync(py, ["-c", "import grpc_tools, os; print(os.path.dirname(grpc_tools.__file__))"]).toString().trim(),
    "_proto",
  );
  const protoRoot = path.join(root, "proto");
  const protos = fs.readdirSync(path.join(protoRoot, "driftd", "v1")).filter((f) => f.endsWith(".proto")).sort()
    .map((f) => `driftd/v1/${f}`);
  protos.push("google/rpc/error_details.proto"); // vendored in clients/node/proto (googleapis, Apache-2.0)
  const plugin = path.join(pkg, "node_modules", ".bin", "protoc-gen-ts_proto");
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), "driftd-gen-"));
  try {
    execFileSync(py, [
      "-m", "grpc_tools.protoc",
      `--plugin=protoc-gen-ts_proto=${plugin}`,
      `-I${protoRoot}`,
      `-I${path.join(root, "third_party", "googleapis")}`,
      `-I${path.join(pkg, "proto")}`,
      `-I${wellKnown}`,
      `--ts_proto_out=${tmp}`,
      "--ts_proto_opt=outputServices=grpc-js,esModuleInterop=true,forceLong=number,env=node,useOptionals=none,oneof=unions-value",
      ...protos,
    ], { stdio: ["ignore", "inherit", "inherit"] });
    fs.rmSync(outDir, { recursive: true, force: true });
    const written = [];
    const copy = (rel) => {
      const src = path.join(tmp, rel);
      for (const entry of fs.readdirSync(src, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
        const r = path.join(rel, entry.name);
        if (entry.isDirectory()) { copy(r); continue; }
        fs.mkdirSync(path.join(outDir, rel), { recursive: true });
        fs.copyFileSync(path.join(tmp, r), path.join(outDir, r));
        written.push(r);
      }
    };
    copy("");
    return written.sort();
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf("--out");
  const out = i > 0 ? path.resolve(process.argv[i + 1]) : path.join(pkg, "src", "gen");
  for (const f of generate(out)) console.log(f);
}

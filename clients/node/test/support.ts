// A real driftd server for the tests: `driftd serve` from the project's venv on a free loopback
// port with a temp data dir, metrics off; ready once a ListMonitors call answers.
import { ChildProcess, spawn } from "node:child_process";
import fs from "node:fs";
import net from "node:net";
import os from "node:os";
import path from "node:path";
import { Metadata } from "@grpc/grpc-js";
import { Client } from "../src";

/** Servers this process started and that have not exited: killed when the test process exits
 * (a failed or timed-out test file must not leave a driftd running). */
const live = new Set<ChildProcess>();
process.once("exit", () => {
  for (const p of live) {
    try {
      p.kill("SIGKILL");
    } catch {
      // already gone
    }
  }
});

export const PKG = path.resolve(__dirname, "..", "..");
export const ROOT = path.resolve(PKG, "..", "..");

export function python(): string {
  if (process.env.PYTHON) return process.env.PYTHON;
  const venv = path.join(ROOT, ".venv", "bin", "python");
  return fs.existsSync(venv) ? venv : "python3";
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export class Served {
  proc: ChildProcess | null = null;
  private logPath: string;

  constructor(readonly dataDir: string, readonly port: number) {
    this.logPath = path.join(dataDir, "..", `server-${port}.log`);
  }

  get target(): string {
    return `127.0.0.1:${this.port}`;
  }

  private ownedRoot: string | null = null;

  static async start(dataDir?: string, port?: number): Promise<Served> {
    const root = dataDir === undefined ? fs.mkdtempSync(path.join(os.tmpdir(), "driftd-node-")) : null;
    const s = new Served(dataDir ?? path.join(root!, "data"), port ?? (await freePort()));
    s.ownedRoot = root;
    await s.startProcess();
    return s;
  }

  /** Stop, and remove the temp directory the server was started in (when start() made it). */
  async dispose(): Promise<void> {
    await this.stop();
    if (this.ownedRoot !== null) fs.rmSync(this.ownedRoot, { recursive: true, force: true });
  }

  async startProcess(): Promise<void> {
    const log = fs.openSync(this.logPath, "a");
    this.proc = spawn(python(), ["-m", "driftd.server.cli", "serve", "--data-dir", this.dataDir, "--host", "127.0.0.1",
      "--port", String(this.port), "--metrics-port", "-1", "--grace-period", "1", "--log-level", "warning"],
    { stdio: ["ignore", log, log], env: { ...process.env } });
    fs.closeSync(log);
    const proc = this.proc;
    live.add(proc);
    let exited = false;
    proc.once("exit", () => { exited = true; live.delete(proc); });
    const probe = new Client(this.target, { channelOptions: { "grpc.initial_reconnect_backoff_ms": 50, "grpc.max_reconnect_backoff_ms": 200 } });
    const deadline = Date.now() + 60_000;
    try {
      for (;;) {
        if (exited) throw new Error(`driftd exited during startup:\n${this.logTail()}`);
        try {
          await new Promise<void>((resolve, reject) => probe.monitors.listMonitors({ pageSize: 1, pageToken: "" }, new Metadata(),
            { deadline: Date.now() + 1000 }, (err) => (err ? reject(err) : resolve())));
          return;
        } catch {
          if (Date.now() > deadline) throw new Error(`driftd did not answer within 60 s:\n${this.logTail()}`);
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    } finally {
      probe.channel.close();
    }
  }

  logTail(): string {
    try {
      return fs.readFileSync(this.logPath, "utf8").split("\n").slice(-30).join("\n");
    } catch {
      return "";
    }
  }

  /** SIGTERM (drain: windows and dedupe state are saved) and wait for the exit. */
  async stop(): Promise<void> {
    const proc = this.proc;
    if (!proc || proc.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      const kill = setTimeout(() => proc.kill("SIGKILL"), 15_000);
      proc.once("exit", () => { clearTimeout(kill); resolve(); });
      proc.kill("SIGTERM");
    });
    this.proc = null;
  }

  async restart(): Promise<void> {
    await this.stop();
    await this.startProcess();
  }
}

/** Seeded normal samples (Box-Muller on a small LCG-free PRNG: mulberry32). */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  const uniform = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return () => {
    const u = Math.max(uniform(), 1e-12);
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * uniform());
  };
}

export function normals(n: number, seed: number, loc = 0, scale = 1): Float32Array {
  const g = rng(seed);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = loc + scale * g();
  return out;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

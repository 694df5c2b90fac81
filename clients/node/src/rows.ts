/**
 * What `log()` receives -> schema-ordered columnar typed arrays, many rows at once.
 *
 * `log()` only runs `buildItem` (cheap name and row-count checks; it keeps references, converts
 * nothing). The sender calls `assemble` on a whole batch's items and gets one Float32Array per
 * numeric / embedding / score group, Int32Array codes, etc., ready to be sent as raw tensors.
 * Semantics follow the Python client (driftd.client._rows): a missing numeric value is NaN, a
 * missing categorical value code -1, a category name outside the schema's list code K (unseen).
 */
import { Code, DriftdError } from "./errors";
import type { Monitor } from "./gen/driftd/v1/monitor";

export const MISSING_CODE = -1;

export type Scalar = number | string | boolean | null | undefined;
export type Column = ArrayLike<number | string | boolean | null | undefined>;
/** One row's features (`{amount: 12.3, country: "de"}`) or a block: columns by name, a row-major
 * Float32Array / Float64Array [N * numeric], or rows as number[][] (numeric-only monitors). */
export type Features = Record<string, Scalar> | Record<string, Column> | Float32Array | Float64Array | number[][];
/** One row: number[] / Float32Array of `dim`; a block: row-major Float32Array [N * dim] or number[][]. */
export type EmbeddingInput = ArrayLike<number> | number[][];
/** One row: a number, number[] (one per score output) or {output: value}; a block: Float32Array
 * [N * outputs], number[] (one output), number[][] or {output: column}. */
export type Scores = number | ArrayLike<number> | number[][] | Record<string, number | ArrayLike<number>>;

export interface LogInput {
  features?: Features;
  embeddings?: Record<string, EmbeddingInput>;
  scores?: Scores;
  latencyMs?: number | ArrayLike<number>;
  statusCodes?: number | ArrayLike<number>;
  requestIds?: string | ArrayLike<string>;
}

export class ClientSchema {
  readonly numericIndex: Map<string, number>;
  readonly categoricalIndex: Map<string, number>;
  readonly categoryCodes: Map<string, number>[];
  readonly rowBytes: number;

  constructor(
    readonly numeric: string[],
    readonly categorical: string[],
    readonly categories: string[][],
    readonly embeddings: [string, number][],
    readonly scores: string[],
  ) {
    this.numericIndex = new Map(numeric.map((n, i) => [n, i]));
    this.categoricalIndex = new Map(categorical.map((n, i) => [n, i]));
    this.categoryCodes = categories.map((cats) => new Map(cats.map((c, i) => [c, i])));
    // bytes one row takes on the wire (+ overhead): float32 values, int64 categorical codes, latency
    // and status code; request ids are added per item (LogItem.idBytes)
    this.rowBytes = 4 * (numeric.length + embeddings.reduce((a, [, d]) => a + d, 0) + scores.length + 2) + 8 * categorical.length + 16;
  }

  static fromMonitor(m: Monitor): ClientSchema {
    const s = m.schema;
    if (!s) return new ClientSchema([], [], [], [], []);
    return new ClientSchema(s.numericFeatures.map((f) => f.name), s.categoricalFeatures.map((f) => f.name),
      s.categoricalFeatures.map((f) => [...f.categories]), s.embeddingBlocks.map((b) => [b.name, b.dim] as [string, number]),
      s.scoreOutputs.map((o) => o.name));
  }

  hasFeature(name: string): boolean {
    return this.numericIndex.has(name) || this.categoricalIndex.has(name);
  }

  featureNames(): string[] {
    return [...this.numeric, ...this.categorical].sort();
  }
}

/** One `log()` call: a single row, or rows [start, start + rows) of a block. */
export interface LogItem {
  rows: number;
  single: boolean;
  start: number;
  input: LogInput;
  /** estimated wire bytes per row of the request ids (0 without ids; from the first id of a block) */
  idBytes?: number;
}

/** Estimated bytes per row an item's request ids add (string + protobuf tag and length). */
function idBytes(input: LogInput): number {
  const ids = input.requestIds;
  if (ids == null) return 0;
  if (typeof ids === "string") return ids.length + 2;
  const first = ids.length ? ids[0] : undefined;
  return (first == null ? 0 : String(first).length) + 2;
}

/** Bytes per row of one item on the wire (schema estimate + its request ids). */
export function itemRowBytes(schema: ClientSchema, item: LogItem): number {
  return schema.rowBytes + (item.idBytes ?? 0);
}

/** A single row's scores: one per output, by position or by name (nothing silently 0 / NaN). */
function checkSingleScores(schema: ClientSchema, s: Scores): void {
  const k = schema.scores.length;
  if (typeof s === "number") {
    if (k !== 1) throw invalid("scores", `the monitor has ${k} score outputs ${JSON.stringify(schema.scores)}: pass ${k} values or {output: value}`, "BAD_SHAPE");
    return;
  }
  if (isPlainObject(s) && !("length" in s)) {
    for (const name of schema.scores) {
      if (typeof (s as Record<string, unknown>)[name] !== "number") throw invalid(`scores.${name}`, "missing score output", "MISSING_COLUMN");
    }
    for (const key in s) {
      if (!schema.scores.includes(key)) {
        throw invalid(`scores.${key}`, `unknown score output ${JSON.stringify(key)}; the monitor has ${JSON.stringify(schema.scores)}`, "UNKNOWN_FEATURE");
      }
    }
    return;
  }
  const n = (s as ArrayLike<number>).length;
  if (typeof n !== "number" || n !== k) throw invalid("scores", `a row needs ${k} score values ${JSON.stringify(schema.scores)}, got ${n}`, "BAD_SHAPE");
}

function invalid(field: string, description: string, reason = "INVALID_ROW"): DriftdError {
  return new DriftdError(Code.INVALID_ARGUMENT, `${field}: ${description}`, { reason, fieldViolations: [{ field, description }] });
}

function isScalar(v: unknown): boolean {
  const t = typeof v;
  return v === null || t === "number" || t === "string" || t === "boolean" || t === "undefined";
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !ArrayBuffer.isView(v) && !Array.isArray(v);
}

function isScalarRecord(v: unknown): boolean {
  if (!isPlainObject(v)) return false;
  for (const k in v) if (!isScalar(v[k])) return false;
  return true;
}

/** Cheap checks only; throws DriftdError(INVALID_ARGUMENT) naming the field. */
export function buildItem(schema: ClientSchema, input: LogInput): LogItem {
  const f = input.features;
  const single = f !== undefined
    ? isScalarRecord(f)
    : typeof input.scores === "number" || (input.scores !== undefined && isScalarRecord(input.scores)
      && schema.scores.length > 0 && schema.scores.every((s) => typeof (input.scores as Record<string, unknown>)[s] === "number"))
      || typeof input.latencyMs === "number" || typeof input.statusCodes === "number" || typeof input.requestIds === "string";
  if (single) {
    if (f !== undefined) {
      for (const k in f as Record<string, Scalar>) {
        if (!schema.hasFeature(k)) {
          throw invalid(`features.${k}`, `unknown feature ${JSON.stringify(k)}; the monitor has ${JSON.stringify(schema.featureNames())}`,
            "UNKNOWN_FEATURE");
        }
      }
    }
    for (const [name, dim] of schema.embeddings) {
      const e = input.embeddings?.[name];
      if (e === undefined) throw invalid(`embeddings.${name}`, `missing embedding block (dim ${dim})`, "MISSING_COLUMN");
      if (e.length !== dim) throw invalid(`embeddings.${name}`, `must have ${dim} values, got ${e.length}`, "BAD_SHAPE");
    }
    if (schema.scores.length && input.scores == null) {
      throw invalid("scores", `the monitor has score output(s) ${JSON.stringify(schema.scores)}: pass scores`, "MISSING_COLUMN");
    }
    if (schema.scores.length) checkSingleScores(schema, input.scores!);
    return { rows: 1, single: true, start: 0, input, idBytes: idBytes(input) };
  }
  const lengths = new Map<string, number>();
  if (f !== undefined) {
    if (f instanceof Float32Array || f instanceof Float64Array || Array.isArray(f)) {
      if (schema.categorical.length) {
        throw invalid("features", "this monitor has categorical features: pass a record of columns", "BAD_SHAPE");
      }
      const k = schema.numeric.length;
      if (Array.isArray(f)) {
        if (f.length && (f[0] as unknown as ArrayLike<number>).length !== k) {
          throw invalid("features", `rows must have ${k} numeric values in schema order, got ${(f[0] as unknown as ArrayLike<number>).length}`, "BAD_SHAPE");
        }
        lengths.set("features", f.length);
      } else {
        if (k === 0 || f.length % k !== 0) throw invalid("features", `a row-major array needs a multiple of ${k} values, got ${f.length}`, "BAD_SHAPE");
        lengths.set("features", f.length / k);
      }
    } else {
      for (const k in f) {
        if (!schema.hasFeature(k)) {
          throw invalid(`features.${k}`, `unknown feature ${JSON.stringify(k)}; the monitor has ${JSON.stringify(schema.featureNames())}`,
            "UNKNOWN_FEATURE");
        }
        const col = (f as Record<string, Column>)[k];
        if (col === null || typeof col !== "object" || typeof col.length !== "number") {
          throw invalid(`features.${k}`, "a block needs a column (array) for every feature", "BAD_SHAPE");
        }
        lengths.set(`features.${k}`, col.length);
      }
    }
  }
  for (const [name, dim] of schema.embeddings) {
    const e = input.embeddings?.[name];
    if (e === undefined) throw invalid(`embeddings.${name}`, `missing embedding block (dim ${dim})`, "MISSING_COLUMN");
    if (Array.isArray(e) && e.length && Array.isArray(e[0])) {
      if ((e[0] as number[]).length !== dim) throw invalid(`embeddings.${name}`, `rows must have ${dim} values`, "BAD_SHAPE");
      lengths.set(`embeddings.${name}`, e.length);
    } else {
      if (e.length % dim !== 0) throw invalid(`embeddings.${name}`, `a row-major block needs a multiple of ${dim} values, got ${e.length}`, "BAD_SHAPE");
      lengths.set(`embeddings.${name}`, e.length / dim);
    }
  }
  if (schema.scores.length) {
    const s = input.scores;
    if (s === undefined) throw invalid("scores", `the monitor has score output(s) ${JSON.stringify(schema.scores)}: pass scores`, "MISSING_COLUMN");
    lengths.set("scores", scoreRows(schema, s));
  }
  for (const key of ["latencyMs", "statusCodes", "requestIds"] as const) {
    const v = input[key];
    if (v != null) {
      if (typeof v !== "object") throw invalid(key, "a block needs an array", "BAD_SHAPE");
      lengths.set(key, v.length);
    }
  }
  const distinct = new Set(lengths.values());
  if (distinct.size !== 1) {
    const detail = [...lengths].map(([k, n]) => `${k}=${n}`).join(", ");
    throw invalid("rows", `every column of one log() call needs the same number of rows, got ${detail || "none"}`, "BAD_SHAPE");
  }
  const [rows] = distinct;
  return { rows, single: false, start: 0, input, idBytes: idBytes(input) };
}

function scoreRows(schema: ClientSchema, s: Scores): number {
  const k = schema.scores.length;
  if (typeof s === "number") {
    if (k !== 1) throw invalid("scores", `the monitor has ${k} score outputs ${JSON.stringify(schema.scores)}: one number is not enough`, "BAD_SHAPE");
    return 1;
  }
  if (isPlainObject(s) && !("length" in s)) {
    const lens = schema.scores.map((name) => {
      const col = (s as Record<string, number | ArrayLike<number>>)[name];
      if (col === undefined) throw invalid(`scores.${name}`, "missing score output", "MISSING_COLUMN");
      return typeof col === "number" ? 1 : col.length;
    });
    if (new Set(lens).size !== 1) throw invalid("scores", "score columns of different lengths", "BAD_SHAPE");
    return lens[0];
  }
  const arr = s as ArrayLike<number> | number[][];
  if (Array.isArray(arr) && arr.length && Array.isArray(arr[0])) {
    for (let r = 0; r < arr.length; r++) {
      const row = (arr as number[][])[r];
      if (!Array.isArray(row) || row.length !== k) {
        throw invalid("scores", `row ${r} needs ${k} score values ${JSON.stringify(schema.scores)}, got ${Array.isArray(row) ? row.length : typeof row}`, "BAD_SHAPE");
      }
    }
    return arr.length;
  }
  if (arr.length % k !== 0) throw invalid("scores", `a row-major block needs a multiple of ${k} values, got ${arr.length}`, "BAD_SHAPE");
  return arr.length / k;
}

/** The first k rows of a block item, and the rest (views: nothing is copied). */
export function splitItem(item: LogItem, k: number): [LogItem, LogItem] {
  return [{ ...item, rows: k }, { ...item, start: item.start + k, rows: item.rows - k }];
}

export interface Assembled {
  rows: number;
  numeric?: Float32Array;
  /** Instead of `numeric`: the bytes of row-major Float32Array blocks, in order (views of the caller's arrays). */
  numericChunks?: Uint8Array[];
  categorical?: Int32Array;
  embeddings: Map<string, Float32Array>;
  scores?: Float32Array;
  latencyMs?: Float32Array;
  statusCodes?: Int32Array;
  requestIds?: string[];
}

export function num(v: unknown): number {
  if (v === null || v === undefined) return NaN;
  if (typeof v === "number") return v;
  // Number("") and Number("  ") are 0: an empty string is a missing value, not a zero
  if (typeof v === "string" && v.trim() === "") return NaN;
  return Number(v);
}

/** One categorical value -> code, the same for single rows and blocks: NaN / null / undefined /
 * "" / "None" / "nan" missing (-1); an integer in int32 range is a code as given; any other
 * number (±Infinity, 1.5, 2^40) and any name outside the categories is unseen (K), as the
 * Python client's `_code` treats a non-int value. */
export function categoryCode(v: unknown, codes: Map<string, number>): number {
  if (v === null || v === undefined) return MISSING_CODE;
  if (typeof v === "number") {
    if (Number.isNaN(v)) return MISSING_CODE;
    return Number.isInteger(v) && v >= -2147483648 && v <= 2147483647 ? v : codes.size;
  }
  if (typeof v === "boolean") return v ? 1 : 0;
  const s = String(v);
  if (s === "" || s === "None" || s === "nan") return MISSING_CODE;
  const c = codes.get(s);
  return c === undefined ? codes.size : c;
}

/** Copy `rows` rows starting at `start` of a row-major [N, k] input (typed array or number[][]) into out at row `at`. */
function copyMatrix(src: ArrayLike<number> | number[][], start: number, rows: number, k: number, out: Float32Array, at: number): void {
  if (Array.isArray(src) && src.length && Array.isArray(src[0])) {
    const m = src as number[][];
    for (let r = 0; r < rows; r++) {
      const row = m[start + r];
      const o = (at + r) * k;
      for (let j = 0; j < k; j++) out[o + j] = num(row[j]);
    }
  } else if (src instanceof Float32Array || src instanceof Float64Array) {
    out.set(src.subarray(start * k, (start + rows) * k), at * k);
  } else {
    const a = src as ArrayLike<number>;
    for (let i = 0, o = at * k, n = rows * k, s = start * k; i < n; i++) out[o + i] = num(a[s + i]);
  }
}

/** One batch's columns from many items (single rows and blocks, mixed freely). */
export function assemble(schema: ClientSchema, items: LogItem[]): Assembled {
  let n = 0;
  let withLatency = true;
  let withStatus = true;
  let withIds = true;
  for (const it of items) {
    n += it.rows;
    withLatency &&= it.input.latencyMs != null;
    withStatus &&= it.input.statusCodes != null;
    withIds &&= it.input.requestIds != null;
  }
  const kn = schema.numeric.length;
  const kc = schema.categorical.length;
  const ks = schema.scores.length;
  const out: Assembled = { rows: n, embeddings: new Map() };
  // row-major Float32Array blocks only: the numeric tensor is their bytes, chunk after chunk (no copy here)
  const chunked = kn > 0 && items.every((it) => !it.single && it.input.features instanceof Float32Array);
  if (chunked) {
    out.numericChunks = items.map((it) => {
      const f = it.input.features as Float32Array;
      return new Uint8Array(f.buffer, f.byteOffset + it.start * kn * 4, it.rows * kn * 4);
    });
  }
  const numeric = chunked || !kn ? undefined : new Float32Array(n * kn);
  const categorical = kc ? new Int32Array(n * kc) : undefined;
  const scores = ks ? new Float32Array(n * ks) : undefined;
  const latency = withLatency ? new Float32Array(n) : undefined;
  const status = withStatus ? new Int32Array(n) : undefined;
  const ids: string[] | undefined = withIds ? new Array<string>(n) : undefined;
  const embeds = schema.embeddings.map(([name, dim]) => [name, dim, new Float32Array(n * dim)] as const);
  let at = 0;
  for (const it of items) {
    const inp = it.input;
    if (it.single) {
      const f = (inp.features ?? {}) as Record<string, Scalar>;
      if (numeric) for (let j = 0; j < kn; j++) numeric[at * kn + j] = num(f[schema.numeric[j]]);
      if (categorical) {
        for (let j = 0; j < kc; j++) categorical[at * kc + j] = categoryCode(f[schema.categorical[j]], schema.categoryCodes[j]);
      }
      for (const [name, dim, arr] of embeds) {
        const e = inp.embeddings![name] as ArrayLike<number>;
        for (let j = 0; j < dim; j++) arr[at * dim + j] = num(e[j]);
      }
      if (scores) {
        const s = inp.scores!;
        if (typeof s === "number") scores[at * ks] = s;
        else if (isPlainObject(s) && !("length" in s)) {
          for (let j = 0; j < ks; j++) scores[at * ks + j] = num((s as Record<string, number>)[schema.scores[j]]);
        } else for (let j = 0; j < ks; j++) scores[at * ks + j] = num((s as ArrayLike<number>)[j]);
      }
      if (latency) latency[at] = num(inp.latencyMs);
      if (status) status[at] = Number(inp.statusCodes) | 0;
      if (ids) ids[at] = String(inp.requestIds); // non-null: withIds
      at += 1;
      continue;
    }
    const { start, rows } = it;
    const f = inp.features;
    if (numeric) {
      if (f instanceof Float32Array || f instanceof Float64Array || Array.isArray(f)) {
        copyMatrix(f as ArrayLike<number> | number[][], start, rows, kn, numeric, at);
      } else {
        const cols = f as Record<string, Column> | undefined;
        for (let j = 0; j < kn; j++) {
          const col = cols?.[schema.numeric[j]];
          for (let r = 0; r < rows; r++) numeric[(at + r) * kn + j] = col === undefined ? NaN : num(col[start + r]);
        }
      }
    }
    if (categorical) {
      const cols = f as Record<string, Column> | undefined;
      for (let j = 0; j < kc; j++) {
        const col = cols?.[schema.categorical[j]];
        const codes = schema.categoryCodes[j];
        for (let r = 0; r < rows; r++) categorical[(at + r) * kc + j] = col === undefined ? MISSING_CODE : categoryCode(col[start + r], codes);
      }
    }
    for (const [name, dim, arr] of embeds) copyMatrix(inp.embeddings![name], start, rows, dim, arr, at);
    if (scores) {
      const s = inp.scores!;
      if (typeof s === "number") scores[at * ks] = s;
      else if (isPlainObject(s) && !("length" in s)) {
        for (let j = 0; j < ks; j++) {
          const col = (s as Record<string, number | ArrayLike<number>>)[schema.scores[j]];
          for (let r = 0; r < rows; r++) scores[(at + r) * ks + j] = typeof col === "number" ? col : num(col[start + r]);
        }
      } else copyMatrix(s as ArrayLike<number> | number[][], start, rows, ks, scores, at);
    }
    if (latency) {
      const l = inp.latencyMs as ArrayLike<number>;
      if (l instanceof Float32Array) latency.set(l.subarray(start, start + rows), at);
      else for (let r = 0; r < rows; r++) latency[at + r] = num(l[start + r]);
    }
    if (status) {
      const c = inp.statusCodes as ArrayLike<number>;
      if (c instanceof Int32Array) status.set(c.subarray(start, start + rows), at);
      else for (let r = 0; r < rows; r++) status[at + r] = Number(c[start + r]) | 0;
    }
    if (ids) {
      const r0 = inp.requestIds as ArrayLike<string>;
      for (let r = 0; r < rows; r++) {
        const id = r0[start + r];
        ids[at + r] = id == null ? "" : String(id); // a missing id is empty, never "null"
      }
    }
    at += rows;
  }
  if (numeric) out.numeric = numeric;
  if (categorical) out.categorical = categorical;
  if (scores) out.scores = scores;
  if (latency) out.latencyMs = latency;
  if (status) out.statusCodes = status;
  if (ids && n) out.requestIds = ids;
  for (const [name, , arr] of embeds) out.embeddings.set(name, arr);
  return out;
}

/** The numeric columns as one Float32Array (joining `numericChunks` when assemble left them apart). */
export function numericColumns(a: Assembled): Float32Array | undefined {
  if (a.numeric || !a.numericChunks) return a.numeric;
  const out = new Float32Array(a.numericChunks.reduce((s, c) => s + c.byteLength, 0) / 4);
  const bytes = new Uint8Array(out.buffer);
  let at = 0;
  for (const c of a.numericChunks) {
    bytes.set(c, at);
    at += c.byteLength;
  }
  return out;
}

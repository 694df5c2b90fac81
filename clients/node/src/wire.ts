/**
 * Tensors: raw little-endian bytes + DataType + shape (tensor.proto). A typed array becomes a
 * Tensor without touching its elements: the bytes are a view of the array's buffer (x86 / ARM
 * are little-endian; big-endian hosts are refused).
 */
import os from "node:os";
import { Batch } from "./gen/driftd/v1/ingest";
import { DataType, Tensor } from "./gen/driftd/v1/tensor";

if (os.endianness() !== "LE") {
  throw new Error("@driftd/client needs a little-endian host (tensors travel as raw little-endian bytes)");
}

export type NumericArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array;

function dtypeOf(a: NumericArray): DataType {
  if (a instanceof Float32Array) return DataType.DATA_TYPE_FLOAT32;
  if (a instanceof Float64Array) return DataType.DATA_TYPE_FLOAT64;
  if (a instanceof Int32Array) return DataType.DATA_TYPE_INT32;
  if (a instanceof BigInt64Array) return DataType.DATA_TYPE_INT64;
  if (a instanceof Uint8Array) return DataType.DATA_TYPE_UINT8;
  throw new TypeError("unsupported typed array");
}

/** A Tensor of `shape` whose data is a zero-copy view of `array` (row-major). */
export function tensor(array: NumericArray, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  if (n !== array.length) throw new RangeError(`tensor shape [${shape}] needs ${n} elements, got ${array.length}`);
  return { dtype: dtypeOf(array), shape, data: Buffer.from(array.buffer, array.byteOffset, array.byteLength) };
}

/** The elements of a Tensor as a typed array (copied: protobuf bytes need not be aligned). */
export function fromTensor(t: Tensor): NumericArray {
  const bytes = new Uint8Array(t.data.byteLength);
  bytes.set(t.data);
  switch (t.dtype) {
    case DataType.DATA_TYPE_FLOAT32: return new Float32Array(bytes.buffer);
    case DataType.DATA_TYPE_FLOAT64: return new Float64Array(bytes.buffer);
    case DataType.DATA_TYPE_INT32: return new Int32Array(bytes.buffer);
    case DataType.DATA_TYPE_INT64: return new BigInt64Array(bytes.buffer);
    case DataType.DATA_TYPE_UINT8:
    case DataType.DATA_TYPE_BOOL: return bytes;
    default: throw new TypeError(`unsupported dtype ${DataType[t.dtype]}`);
  }
}

/** An INT64 Tensor of int32 values (categorical codes), packed without BigInt: low word the value,
 * high word its sign extension. The same bytes numpy's int64 gives. */
export function int64Tensor(values: Int32Array, shape: number[]): Tensor {
  const words = new Int32Array(values.length * 2);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    words[2 * i] = v;
    words[2 * i + 1] = v < 0 ? -1 : 0;
  }
  return { dtype: DataType.DATA_TYPE_INT64, shape, data: Buffer.from(words.buffer, words.byteOffset, words.byteLength) };
}

function varintLen(n: number): number {
  let len = 1;
  while (n >= 0x80) {
    n = Math.floor(n / 128);
    len += 1;
  }
  return len;
}

function writeVarint(buf: Buffer, at: number, n: number): number {
  while (n >= 0x80) {
    buf[at++] = (n % 128) | 0x80;
    n = Math.floor(n / 128);
  }
  buf[at++] = n;
  return at;
}

const LEN = 2; // wire type of length-delimited fields

/** A Tensor's wire bytes, without its data: [header, data length]. */
function tensorParts(t: Tensor, n: number): { head: Uint8Array; size: number } {
  const head = Tensor.encode({ dtype: t.dtype, shape: t.shape, data: EMPTY }).finish();
  return { head, size: head.byteLength + (n ? 1 + varintLen(n) + n : 0) };
}

const EMPTY = Buffer.alloc(0);

/**
 * `StreamBatchesRequest{batch}` serialised with every tensor's bytes copied exactly once, straight
 * into the one output buffer (the generic encoder copies them once per nesting level: request,
 * batch, tensor). The small fields go through the generated encoder; protobuf lets the tensor fields
 * follow them. Decodes to the same message as `StreamBatchesRequest.encode({batch})`. With
 * `numericChunks`, the numeric tensor's bytes are those chunks, one after the other (rows of
 * several Float32Array blocks go from the caller's arrays straight into the message).
 */
export function encodeBatchRequest(batch: Batch, numericChunks?: Uint8Array[]): Buffer {
  const fields: [number, string | null, Tensor][] = [];
  const top: [number, Tensor | undefined][] = [[4, batch.numeric], [5, batch.categorical], [7, batch.scores], [8, batch.latencyMs],
    [9, batch.statusCodes]];
  for (const [no, t] of top) if (t) fields.push([no, null, t]);
  for (const key of Object.keys(batch.embeddings).sort()) fields.push([6, key, batch.embeddings[key]]);
  const small = Batch.encode({ ...batch, numeric: undefined, categorical: undefined, embeddings: {}, scores: undefined,
    latencyMs: undefined, statusCodes: undefined }).finish();
  const parts = fields.map(([no, key, t]) => {
    const chunks = no === 4 && numericChunks ? numericChunks : [t.data];
    const n = chunks.reduce((a, c) => a + c.byteLength, 0);
    const { head, size } = tensorParts(t, n);
    const keyBytes = key === null ? null : Buffer.from(key, "utf8");
    // a map entry is a message {1: key, 2: value}
    const entry = keyBytes === null ? size : 1 + varintLen(keyBytes.length) + keyBytes.length + 1 + varintLen(size) + size;
    return { no, keyBytes, chunks, n, head, size, entry };
  });
  let batchLen = small.byteLength;
  for (const p of parts) batchLen += 1 + varintLen(p.entry) + p.entry;
  const total = 1 + varintLen(batchLen) + batchLen;
  const out = Buffer.allocUnsafe(total);
  let at = 0;
  out[at++] = (1 << 3) | LEN;
  at = writeVarint(out, at, batchLen);
  out.set(small, at);
  at += small.byteLength;
  for (const p of parts) {
    out[at++] = (p.no << 3) | LEN;
    at = writeVarint(out, at, p.entry);
    if (p.keyBytes !== null) {
      out[at++] = (1 << 3) | LEN;
      at = writeVarint(out, at, p.keyBytes.length);
      out.set(p.keyBytes, at);
      at += p.keyBytes.length;
      out[at++] = (2 << 3) | LEN;
      at = writeVarint(out, at, p.size);
    }
    out.set(p.head, at);
    at += p.head.byteLength;
    if (p.n) {
      out[at++] = (3 << 3) | LEN;
      at = writeVarint(out, at, p.n);
      for (const c of p.chunks) {
        out.set(c, at);
        at += c.byteLength;
      }
    }
  }
  if (at !== total) throw new Error(`encodeBatchRequest: wrote ${at} of ${total} bytes`);
  return out;
}

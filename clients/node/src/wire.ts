/**
 * Tensors: raw little-endian bytes + DataType + shape (tensor.proto). A typed array becomes a
 * Tensor without touching its elements: the bytes are a view of the array's buffer (x86 / ARM
 * are little-endian; big-endian hosts are refused).
 */
import os from "node:os";
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

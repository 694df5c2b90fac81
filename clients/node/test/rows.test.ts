// Row assembly without a server: columns in schema order, codes as the Python client makes them,
// typed arrays packed into tensors without per-element work.
import assert from "node:assert/strict";
import { test } from "node:test";
import { DriftdError } from "../src";
import { DataType } from "../src/gen/driftd/v1/tensor";
import { assemble, buildItem, ClientSchema, numericColumns, splitItem } from "../src/rows";
import { encodeBatchRequest, fromTensor, int64Tensor, tensor } from "../src/wire";
import { Batch, StreamBatchesRequest } from "../src/gen/driftd/v1/ingest";

const schema = new ClientSchema(["a", "b"], ["c"], [["x", "y"]], [["e", 3]], ["p", "q"]);

test("single rows and blocks assemble into schema-ordered columns", () => {
  const items = [
    buildItem(schema, { features: { b: 2, a: 1, c: "y" }, embeddings: { e: [1, 2, 3] }, scores: [0.1, 0.2] }),
    buildItem(schema, { features: { a: null, c: "zz" }, embeddings: { e: new Float32Array([4, 5, 6]) }, scores: { q: 0.4, p: 0.3 } }),
    buildItem(schema, {
      features: { a: new Float64Array([7, 8]), c: ["x", ""] }, embeddings: { e: [[7, 8, 9], [10, 11, 12]] }, scores: [[0.5, 0.6], [0.7, 0.8]],
    }),
    buildItem(schema, { features: { b: [9], c: [Number.NaN] }, embeddings: { e: new Float32Array([13, 14, 15]) }, scores: new Float32Array([0.9, 1]) }),
  ];
  assert.deepEqual(items.map((i) => [i.single, i.rows]), [[true, 1], [true, 1], [false, 2], [false, 1]]);
  const a = assemble(schema, items);
  assert.equal(a.rows, 5);
  assert.deepEqual(Array.from(a.numeric!), [1, 2, NaN, NaN, 7, NaN, 8, NaN, NaN, 9]);
  // known name -> index, unknown name -> K (unseen), missing / "" / NaN -> -1
  assert.deepEqual(Array.from(a.categorical!), [1, 2, 0, -1, -1]);
  assert.deepEqual(Array.from(a.embeddings.get("e")!), Array.from({ length: 15 }, (_, i) => i + 1));
  assert.deepEqual(Array.from(a.scores!), Array.from(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1])));
  assert.equal(a.latencyMs, undefined);
  assert.equal(a.requestIds, undefined);
});

test("a block split in two assembles to the same columns", () => {
  const s = new ClientSchema(["a", "b"], [], [], [], []);
  const data = Float32Array.from({ length: 20 }, (_, i) => i);
  const whole = buildItem(s, { features: data, latencyMs: new Float32Array(10).fill(3), statusCodes: Array(10).fill(200) });
  const [head, tail] = splitItem(whole, 4);
  const a = assemble(s, [head, tail]);
  // Float32Array blocks are not copied by assemble: their bytes go to the encoder as chunks (views)
  assert.equal(a.numeric, undefined);
  assert.deepEqual(a.numericChunks!.map((c) => c.byteLength), [4 * 2 * 4, 6 * 2 * 4]);
  assert.equal(a.numericChunks![1].buffer, data.buffer);
  assert.deepEqual(Array.from(numericColumns(a)!), Array.from(data));
  // mixed with a record-of-columns block, everything is copied into one array
  const mixed = assemble(s, [head, buildItem(s, { features: { b: [1] } })]);
  assert.deepEqual(Array.from(mixed.numeric!), [...Array.from(data.subarray(0, 8)), NaN, 1]);
  assert.deepEqual(Array.from(a.statusCodes!), Array(10).fill(200));
  assert.equal(a.latencyMs!.length, 10);
});

test("bad input throws DriftdError naming the field", () => {
  const bad = (input: Parameters<typeof buildItem>[1], field: string) => assert.throws(() => buildItem(schema, input), (e: unknown) =>
    e instanceof DriftdError && e.code === 3 && e.fieldViolations[0].field === field);
  bad({ features: { a: 1, nope: 2 }, embeddings: { e: [1, 2, 3] }, scores: [1, 2] }, "features.nope");
  bad({ features: { a: 1 }, scores: [1, 2] }, "embeddings.e");
  bad({ features: { a: 1 }, embeddings: { e: [1, 2] }, scores: [1, 2] }, "embeddings.e");
  bad({ features: { a: 1 }, embeddings: { e: [1, 2, 3] } }, "scores");
  bad({ features: { a: [1, 2] }, embeddings: { e: new Float32Array(3) }, scores: [[1, 2], [3, 4]] }, "rows");
});

test("tensors are views of the typed array; int64 codes are numpy's bytes", () => {
  const f = new Float32Array([1.5, -2, 3]);
  const t = tensor(f, [3, 1]);
  assert.equal(t.dtype, DataType.DATA_TYPE_FLOAT32);
  assert.equal(t.data.buffer, f.buffer, "no copy");
  assert.deepEqual(Array.from(fromTensor(t) as Float32Array), [1.5, -2, 3]);
  const c = int64Tensor(new Int32Array([5, -1, 0]), [3, 1]);
  assert.equal(c.dtype, DataType.DATA_TYPE_INT64);
  assert.deepEqual(Array.from(fromTensor(c) as BigInt64Array), [5n, -1n, 0n]);
  assert.throws(() => tensor(f, [2, 2]), RangeError);
});

test("the one-copy batch encoder decodes to the same message as the generated encoder", () => {
  const f = Float32Array.from({ length: 12 }, (_, i) => i / 3);
  const batch = Batch.fromPartial({
    monitor: "monitors/m", producerId: "p-1", sequence: 300, numeric: tensor(f, [3, 4]), categorical: int64Tensor(new Int32Array([0, -1, 2]), [3, 1]),
    embeddings: { text: tensor(new Float32Array(3 * 200).fill(0.5), [3, 200]), "é": tensor(new Float32Array(0), [0, 2]) },
    scores: tensor(new Float32Array([0.1, 0.2, 0.3]), [3, 1]), latencyMs: tensor(new Float32Array([1, 2, 3]), [3]),
    statusCodes: tensor(new Int32Array([200, 500, 200]), [3]), requestIds: ["a", "b", "c"],
  });
  const mine = encodeBatchRequest(batch);
  const generic = Buffer.from(StreamBatchesRequest.encode({ batch }).finish());
  assert.equal(mine.length, generic.length);
  assert.deepEqual(StreamBatchesRequest.decode(mine), StreamBatchesRequest.decode(generic));
  // the numeric bytes given as chunks: the same message
  const bytes = new Uint8Array(f.buffer);
  const chunked = encodeBatchRequest({ ...batch, numeric: { ...batch.numeric!, data: Buffer.alloc(0) } }, [bytes.subarray(0, 20), bytes.subarray(20)]);
  assert.deepEqual(StreamBatchesRequest.decode(chunked), StreamBatchesRequest.decode(generic));
  const back = StreamBatchesRequest.decode(mine).batch!;
  assert.deepEqual(Array.from(fromTensor(back.numeric!) as Float32Array), Array.from(f));
  assert.equal(back.sequence, 300);
});

test("empty and whitespace strings are missing numeric values (NaN), not 0", () => {
  const s = new ClientSchema(["a", "b"], [], [], [], []);
  const a = assemble(s, [
    buildItem(s, { features: { a: "", b: "  " } }),
    buildItem(s, { features: { a: ["", "2.5"], b: [" \t", "3"] } }),
  ]);
  assert.deepEqual(Array.from(a.numeric!), [NaN, NaN, NaN, NaN, 2.5, 3]);
});

test("categorical numbers: non-integer / infinite / outside int32 are unseen (K), the same in single rows and blocks", () => {
  const s = new ClientSchema([], ["c"], [["x", "y", "z"]], [], []);
  const values = [1, Infinity, -Infinity, 1.5, 2 ** 40, -(2 ** 40), NaN, null, "", "y", "w", 2147483647];
  const expected = [1, 3, 3, 3, 3, 3, -1, -1, -1, 1, 3, 2147483647];
  const singles = assemble(s, values.map((v) => buildItem(s, { features: { c: v } })));
  assert.deepEqual(Array.from(singles.categorical!), expected);
  const block = assemble(s, [buildItem(s, { features: { c: values } })]);
  assert.deepEqual(Array.from(block.categorical!), expected);
});

test("multi-output scores: wrong count or keys throw INVALID_ARGUMENT naming the field", () => {
  const fieldOf = (fn: () => unknown): string => {
    try {
      fn();
    } catch (e) {
      assert.ok(e instanceof DriftdError, String(e));
      assert.equal(e.code, 3 /* INVALID_ARGUMENT */);
      return e.fieldViolations[0].field;
    }
    throw new Error("did not throw");
  };
  const row = { features: { a: 1, c: "x" }, embeddings: { e: [1, 2, 3] } };
  assert.equal(fieldOf(() => buildItem(schema, { ...row, scores: 0.5 })), "scores");
  assert.equal(fieldOf(() => buildItem(schema, { ...row, scores: [0.5] })), "scores");
  assert.equal(fieldOf(() => buildItem(schema, { ...row, scores: [0.1, 0.2, 0.3] })), "scores");
  assert.equal(fieldOf(() => buildItem(schema, { ...row, scores: { p: 0.1 } })), "scores.q");
  assert.equal(fieldOf(() => buildItem(schema, { ...row, scores: { p: 0.1, q: 0.2, r: 0.3 } })), "scores.r");
  const block = { features: { a: [1, 2] }, embeddings: { e: [[1, 2, 3], [4, 5, 6]] } };
  assert.equal(fieldOf(() => buildItem(schema, { ...block, scores: [[0.1, 0.2], [0.3]] })), "scores");
  assert.equal(fieldOf(() => buildItem(schema, { ...block, scores: { p: [0.1, 0.2] } })), "scores.q");
  // well-formed ones still pass
  const ok = assemble(schema, [buildItem(schema, { ...row, scores: { q: 0.2, p: 0.1 } }), buildItem(schema, { ...block, scores: [[0.3, 0.4], [0.5, 0.6]] })]);
  assert.deepEqual(Array.from(ok.scores!), Array.from(new Float32Array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])));
});

test("null latency / status / request id mean absent, never the string \"null\"", () => {
  const s = new ClientSchema(["a"], [], [], [], []);
  const a = assemble(s, [buildItem(s, { features: { a: 1 }, latencyMs: null as never, statusCodes: undefined, requestIds: null as never })]);
  assert.equal(a.latencyMs, undefined);
  assert.equal(a.statusCodes, undefined);
  assert.equal(a.requestIds, undefined);
  const b = assemble(s, [buildItem(s, { features: { a: [1, 2] }, requestIds: ["r1", null as never], latencyMs: null as never })]);
  assert.deepEqual(b.requestIds, ["r1", ""]);
  assert.equal(b.latencyMs, undefined);
  // a row with an id and one with a null id never share a batch (the sender splits by which groups an item has)
  const withId = buildItem(s, { features: { a: 1 }, requestIds: "r" });
  const nullId = buildItem(s, { features: { a: 1 }, requestIds: null as never });
  assert.deepEqual(assemble(s, [withId]).requestIds, ["r"]);
  assert.equal(assemble(s, [nullId]).requestIds, undefined);
});

test("row size estimate: int64 categorical codes (8 bytes) and request ids", () => {
  const s = new ClientSchema(["a"], ["c", "d"], [["x"], ["y"]], [], []);
  assert.equal(s.rowBytes, 4 * (1 + 2) + 8 * 2 + 16);
  const it = buildItem(s, { features: { a: 1 }, requestIds: "req-0001" });
  assert.equal(it.idBytes, 10);
});

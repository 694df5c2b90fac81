"""decode_batch: schema validation with the exact field named; NaN is data; bf16 widening."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.schema import CategoricalFeature, EmbeddingBlock, NumericFeature, Schema, ScoreOutput
from driftd.server.transport.batch_codec import decode_batch, decode_tensors
from driftd.server.transport.codec import encode_tensor
from driftd.v1 import ingest_pb2, tensor_pb2

SCHEMA = Schema(
    numeric=(NumericFeature("a"), NumericFeature("b")),
    categorical=(CategoricalFeature("c"),),
    embeddings=(EmbeddingBlock("text", 4),),
    scores=(ScoreOutput("p"),),
)


def good(n=3) -> ingest_pb2.Batch:
    b = ingest_pb2.Batch(monitor="monitors/m", producer_id="p", sequence=1)
    b.numeric.CopyFrom(encode_tensor(np.arange(n * 2, dtype=np.float32).reshape(n, 2)))
    b.categorical.CopyFrom(encode_tensor(np.zeros((n, 1), np.int32)))
    b.embeddings["text"].CopyFrom(encode_tensor(np.ones((n, 4), np.float16)))
    b.scores.CopyFrom(encode_tensor(np.full((n, 1), 0.5, np.float64)))
    b.latency_ms.CopyFrom(encode_tensor(np.full(n, 3.0, np.float32)))
    b.status_codes.CopyFrom(encode_tensor(np.full(n, 200, np.int32)))
    b.request_ids.extend([f"r{i}" for i in range(n)])
    return b


def test_good_batch_decodes_to_zero_copy_views():
    out = decode_batch(good(), SCHEMA)
    assert out.n_rows == 3
    assert out.numeric.dtype == np.float32 and out.categorical.dtype == np.int32
    assert out.embeddings["text"].dtype == np.float16 and out.scores.dtype == np.float64
    assert not out.numeric.flags.owndata
    assert out.request_ids == ["r0", "r1", "r2"]


def test_nan_only_batch_is_data_not_an_error():
    b = good()
    b.numeric.CopyFrom(encode_tensor(np.full((3, 2), np.nan, np.float32)))
    assert np.isnan(decode_batch(b, SCHEMA).numeric).all()


def test_bfloat16_is_widened_exactly():
    values = torch.tensor([[1.5, -2.25], [3.0, float("nan")]], dtype=torch.bfloat16)
    b = ingest_pb2.Batch(monitor="monitors/m")
    b.numeric.CopyFrom(tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_BFLOAT16, shape=[2, 2], data=values.view(torch.int16).numpy().tobytes()))
    out = decode_batch(b, Schema(numeric=SCHEMA.numeric))
    np.testing.assert_array_equal(out.numeric, values.float().numpy())


def test_payload_size_is_the_tensor_bytes_on_the_wire_plus_request_ids():
    b = good(5)
    out, size = decode_tensors(b)
    wire = sum(len(t.data) for t in (b.numeric, b.categorical, b.scores, b.latency_ms, b.status_codes, b.embeddings["text"]))
    assert size == wire + sum(len(r) for r in b.request_ids) > 0
    # bf16 counts its 2 wire bytes per value, not the widened 4
    values = torch.zeros((7, 2), dtype=torch.bfloat16)
    bf = ingest_pb2.Batch(monitor="monitors/m")
    bf.numeric.CopyFrom(tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_BFLOAT16, shape=[7, 2], data=values.view(torch.int16).numpy().tobytes()))
    out, size = decode_tensors(bf)
    assert size == 7 * 2 * 2 and out.numeric.dtype == np.float32
    assert decode_tensors(ingest_pb2.Batch(monitor="monitors/m"))[1] == 0


def _case(mutate):
    b = good()
    mutate(b)
    return b


CASES = {
    "wrong dtype": (lambda b: b.numeric.CopyFrom(encode_tensor(np.zeros((3, 2), np.int32))), "batch.numeric.dtype"),
    "wrong column count": (lambda b: b.numeric.CopyFrom(encode_tensor(np.zeros((3, 5), np.float32))), "batch.numeric.shape"),
    "bytes mismatch": (lambda b: setattr(b.numeric, "data", b.numeric.data[:-4]), "batch.numeric.data"),
    "rank": (lambda b: b.numeric.CopyFrom(encode_tensor(np.zeros(6, np.float32))), "batch.numeric.shape"),
    "row mismatch": (lambda b: b.scores.CopyFrom(encode_tensor(np.zeros((4, 1), np.float32))), "batch.scores.shape"),
    "unknown block": (lambda b: b.embeddings["image"].CopyFrom(encode_tensor(np.zeros((3, 4), np.float32))), 'batch.embeddings["image"]'),
    "wrong dim": (lambda b: b.embeddings["text"].CopyFrom(encode_tensor(np.zeros((3, 5), np.float32))), 'batch.embeddings["text"].shape'),
    "float categorical": (lambda b: b.categorical.CopyFrom(encode_tensor(np.zeros((3, 1), np.float32))), "batch.categorical.dtype"),
    "ids count": (lambda b: b.request_ids.append("extra"), "batch.request_ids"),
    "missing group": (lambda b: b.ClearField("scores"), "batch.scores"),
    "missing block": (lambda b: b.ClearField("embeddings"), 'batch.embeddings["text"]'),
    "latency rank": (lambda b: b.latency_ms.CopyFrom(encode_tensor(np.zeros((3, 1), np.float32))), "batch.latency_ms.shape"),
}


def test_zero_rows_is_refused():
    schema = Schema(numeric=(NumericFeature("a"), NumericFeature("b")))
    b = ingest_pb2.Batch()
    b.numeric.CopyFrom(encode_tensor(np.zeros((0, 2), np.float32)))
    with pytest.raises(InvalidArgument, match="no rows"):
        decode_batch(b, schema)


@pytest.mark.parametrize("case", list(CASES))
def test_bad_batches_name_the_field(case):
    mutate, field = CASES[case]
    with pytest.raises(InvalidArgument) as err:
        decode_batch(_case(mutate), SCHEMA)
    assert [v.field for v in err.value.violations] == [field]


def test_group_absent_from_schema():
    schema = Schema(numeric=(NumericFeature("a"), NumericFeature("b")))
    with pytest.raises(InvalidArgument) as err:
        decode_batch(good(), schema)
    assert err.value.violations[0].field == "batch.categorical"

"""Tensor codec: zero-copy decode, precise errors naming the field."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st
from hypothesis.extra import numpy as hnp

from driftd.server.domain.errors import InvalidArgument
from driftd.server.transport.codec import decode_tensor, encode_tensor
from driftd.v1 import tensor_pb2

DTYPES = [np.float32, np.float16, np.float64, np.int32, np.int64, np.uint8, np.bool_]


@given(st.sampled_from(DTYPES).flatmap(lambda dt: hnp.arrays(dt, hnp.array_shapes(min_dims=1, max_dims=3, max_side=6))))
def test_round_trip(array):
    back = decode_tensor(encode_tensor(array), "t")
    assert back.dtype == array.dtype.newbyteorder("<") and back.shape == array.shape
    np.testing.assert_array_equal(back, array)


def test_decode_is_a_view_over_the_message_bytes():
    t = encode_tensor(np.arange(12, dtype=np.float32).reshape(3, 4))
    view = decode_tensor(t, "batch.numeric")
    assert not view.flags.writeable and not view.flags.owndata


@pytest.mark.parametrize("tensor,field", [
    (tensor_pb2.Tensor(dtype=0, shape=[1], data=b"\0" * 4), "batch.numeric.dtype"),
    (tensor_pb2.Tensor(dtype=99, shape=[1], data=b"\0" * 4), "batch.numeric.dtype"),
    (tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_FLOAT32, shape=[2, 3], data=b"\0" * 20), "batch.numeric.data"),
    (tensor_pb2.Tensor(dtype=tensor_pb2.DATA_TYPE_FLOAT32, shape=[-1], data=b""), "batch.numeric.shape"),
])
def test_bad_tensors_name_the_field(tensor, field):
    with pytest.raises(InvalidArgument) as err:
        decode_tensor(tensor, "batch.numeric")
    assert [v.field for v in err.value.violations] == [field]


def test_rank_and_allowed_dtypes():
    t = encode_tensor(np.zeros((2, 2), np.int32))
    with pytest.raises(InvalidArgument, match="not allowed"):
        decode_tensor(t, "x", allowed={tensor_pb2.DATA_TYPE_FLOAT32})
    with pytest.raises(InvalidArgument, match="expected rank 1"):
        decode_tensor(t, "x", rank=1)

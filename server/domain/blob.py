"""The binary layout shared by baseline and engine-state blobs:
8-byte magic + uint32 version + uint64 JSON header length + JSON header + raw little-endian arrays
(the header's "arrays" entry indexes them by name: dtype, shape, offset, nbytes)."""

from __future__ import annotations

import io
import json
import struct

import numpy as np

from driftd.server.domain.errors import FailedPrecondition, InvalidArgument


def pack(magic: bytes, version: int, header: dict, arrays: dict[str, np.ndarray], *, sort_keys: bool = False,
         allow_nan: bool = True) -> bytes:
    index, chunks, offset = {}, [], 0
    for name, a in arrays.items():
        a = np.ascontiguousarray(a)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        raw = a.tobytes()
        index[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": len(raw)}
        chunks.append(raw)
        offset += len(raw)
    hb = json.dumps(dict(header, arrays=index), sort_keys=sort_keys, allow_nan=allow_nan).encode()
    buf = io.BytesIO()
    buf.write(magic)
    buf.write(struct.pack("<IQ", version, len(hb)))
    buf.write(hb)
    for c in chunks:
        buf.write(c)
    return buf.getvalue()


def unpack(blob: bytes, magic: bytes, version: int, what: str) -> tuple[dict, dict[str, np.ndarray]]:
    """(header, arrays); InvalidArgument for a foreign blob, FailedPrecondition for another version."""
    if len(blob) < 20 or blob[:8] != magic:
        raise InvalidArgument.one(what.replace(" ", "_"), f"not a driftd {what} blob (bad magic)")
    found, hlen = struct.unpack("<IQ", blob[8:20])
    if found != version:
        raise FailedPrecondition(f"{what} format version {found} is not supported (this build reads {version})")
    header = json.loads(blob[20:20 + hlen])
    data = memoryview(blob)[20 + hlen:]
    arrays = {name: np.frombuffer(data[ix["offset"]: ix["offset"] + ix["nbytes"]], dtype=np.dtype(ix["dtype"]))
              .reshape(ix["shape"]).copy() for name, ix in header["arrays"].items()}
    return header, arrays

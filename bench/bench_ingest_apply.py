"""Server-side cost of one ingested batch on the event loop, without gRPC or a client process.

    python bench/bench_ingest_apply.py [--batches 10000] [--rows 256 4096]

`IngestServicer.apply` (what StreamBatches / WriteBatch run per batch on the event loop: payload
size, decode to zero-copy views, schema checks, dedupe, queue offer, metrics) timed over `--batches`
pre-built 32-float-column batches against a real server's runtime (the window updates run on the
engine thread as in production; the loop yields every 100 batches so the queue drains). The rows/s
that one event loop could accept is 1 / that cost x rows. The end-to-end rate is bench_ingest.py.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_ingest  # noqa: E402
from support import start_served, stop_served  # noqa: E402

from driftd.server.transport.codec import encode_tensor  # noqa: E402
from driftd.server.transport.ingest import IngestServicer  # noqa: E402
from driftd.v1 import ingest_pb2  # noqa: E402

YIELD_EVERY = 100


async def per_batch_us(ingest: IngestServicer, monitor: str, rows: int, batches: int, first_sequence: int) -> float:
    block = np.random.default_rng(rows).normal(size=(rows, bench_ingest.FEATURES)).astype(np.float32)
    pending = []
    for k in range(batches):
        b = ingest_pb2.Batch(monitor=f"monitors/{monitor}", producer_id="bench", sequence=first_sequence + k)
        b.numeric.CopyFrom(encode_tensor(block))
        # parsed from bytes like a received message (a built message keeps Python-side state)
        pending.append(ingest_pb2.Batch.FromString(b.SerializeToString()))
    busy = 0.0
    for start in range(0, batches, YIELD_EVERY):
        t = time.perf_counter()
        for b in pending[start:start + YIELD_EVERY]:
            ack = await ingest.apply(b)
            if ack.status.code:
                raise RuntimeError(ack.status.message)
        busy += time.perf_counter() - t
        await asyncio.sleep(0.02 * rows / 256)  # let the engine thread drain the queue
    return busy / batches * 1e6


async def main_async(batches: int, sizes: list[int]) -> None:
    served = await start_served(Path(tempfile.mkdtemp()), gc_freeze=False)
    try:
        target = f"127.0.0.1:{served.port}"
        await asyncio.to_thread(bench_ingest.setup_driftd, target, "apply", False, 0)
        ingest = IngestServicer(served.server.runtimes, served.server.lifecycle, 32 << 20, served.server.metrics)
        sequence = 1
        await per_batch_us(ingest, "apply", 256, 200, sequence)  # runtime load + kernel warm-up
        sequence += 200
        await asyncio.sleep(5)
        print(f"{'batch rows':>10s} {'us / batch':>11s} {'rows/s one loop could accept':>30s}")
        for rows in sizes:
            us = await per_batch_us(ingest, "apply", rows, batches, sequence)
            sequence += batches
            print(f"{rows:10d} {us:11.1f} {rows / us * 1e6:30,.0f}")
    finally:
        await stop_served(served)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--batches", type=int, default=10_000)
    ap.add_argument("--rows", type=int, nargs="+", default=[256, 4096])
    ns = ap.parse_args()
    asyncio.run(main_async(ns.batches, ns.rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

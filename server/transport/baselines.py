"""BaselineService servicer: create from client-streamed reference batches, get, list, activate."""

from __future__ import annotations

import asyncio
import re
import uuid
from concurrent.futures import Executor
from datetime import datetime, timezone

from driftd.server.domain.batch import Batch, concat_batches
from driftd.server.domain.errors import InvalidArgument
from driftd.server.domain.monitor import parse_monitor_name
from driftd.server.service import engine_adapter
from driftd.server.service.runtimes import Runtimes
from driftd.server.store.sqlite import SqliteStore
from driftd.server.transport.batch_codec import decode_batch
from driftd.server.transport.errors import grpc_errors
from driftd.server.transport.monitors import decode_page_token, encode_page_token, page_size
from driftd.server.transport.snapshot_codec import baseline_to_proto
from driftd.v1 import baseline_pb2, baseline_pb2_grpc

BASELINE_ID_RE = re.compile(r"^[a-z0-9][a-z0-9\-_.]{0,62}$")
MAX_REFERENCE_ROWS = 10_000_000


def parse_baseline_name(name: str, field: str = "name") -> tuple[str, str]:
    parts = name.split("/")
    if len(parts) != 4 or parts[0] != "monitors" or parts[2] != "baselines" or not BASELINE_ID_RE.match(parts[3]):
        raise InvalidArgument.one(field, f"expected 'monitors/{{monitor_id}}/baselines/{{baseline_id}}', got {name!r}")
    return parse_monitor_name("/".join(parts[:2]), field), parts[3]


class BaselineServicer(baseline_pb2_grpc.BaselineServiceServicer):
    def __init__(self, store: SqliteStore, runtimes: Runtimes, executor: Executor, on_activate, *,
                 calibration_threads: int = 1) -> None:
        self._store = store
        self._calibration_threads = calibration_threads
        self._runtimes = runtimes
        self._executor = executor
        self._on_activate = on_activate  # async (monitor_id) -> None: drop the runtime built on the old baseline

    @grpc_errors
    async def CreateBaseline(self, request_iterator, context):
        header = None
        batches: list[Batch] = []
        rows = 0
        monitor = None
        i = 0
        async for request in request_iterator:
            kind = request.WhichOneof("payload")
            if header is None:
                if kind != "header":
                    raise InvalidArgument.one("header", "the first message of CreateBaseline must carry the header")
                header = request.header
                monitor = await asyncio.to_thread(self._store.get_monitor, parse_monitor_name(header.parent, "header.parent"))
                if header.baseline_id and not BASELINE_ID_RE.match(header.baseline_id):
                    raise InvalidArgument.one("header.baseline_id", f"invalid baseline id {header.baseline_id!r}: use [a-z0-9][a-z0-9-_.]{{0,62}}")
                continue
            if kind != "batch":
                raise InvalidArgument.one(f"batch[{i}]", "only the first message may carry a header")
            batch = decode_batch(request.batch, monitor.spec.schema, f"batch[{i}]")
            rows += batch.n_rows
            if rows > MAX_REFERENCE_ROWS:
                raise InvalidArgument.one(f"batch[{i}]", f"the reference exceeds {MAX_REFERENCE_ROWS} rows; subsample it")
            batches.append(batch)
            i += 1
        if header is None:
            raise InvalidArgument.one("header", "empty stream: send a header, then reference batches")
        if not batches:
            raise InvalidArgument.one("batch", "no reference batches after the header")
        baseline_id = header.baseline_id or datetime.now(timezone.utc).strftime("b%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]
        now = datetime.now(timezone.utc)

        def build():
            reference = concat_batches(batches) if len(batches) > 1 else batches[0]
            return engine_adapter.build_baseline(monitor.spec, reference, model_id=header.model_id, git_commit=header.git_commit,
                                                 source=header.source, seed=header.seed, created_at=now,
                                                 threads=self._calibration_threads)

        built = await asyncio.get_running_loop().run_in_executor(self._executor, build)
        meta = built.baseline.metadata
        await asyncio.to_thread(self._store.put_baseline, monitor.monitor_id, baseline_id, blob=built.blob,
                                data_hash=meta.data_hash, format_version=meta.format_version,
                                metadata={"model_id": meta.model_id, "git_commit": meta.git_commit, "source": meta.source,
                                          "row_count": meta.row_count},
                                activate=header.activate)
        if header.activate:
            await self._on_activate(monitor.monitor_id)
        return baseline_pb2.CreateBaselineResponse(
            baseline=baseline_to_proto(monitor.monitor_id, baseline_id, built.baseline, active=header.activate))

    async def _load(self, monitor_id: str, baseline_id: str) -> baseline_pb2.Baseline:
        stored = await asyncio.to_thread(self._store.get_baseline, monitor_id, baseline_id)
        monitor = await asyncio.to_thread(self._store.get_monitor, monitor_id)
        baseline = await asyncio.get_running_loop().run_in_executor(self._executor, engine_adapter.load_baseline, stored.blob)
        return baseline_to_proto(monitor_id, baseline_id, baseline, active=monitor.active_baseline_id == baseline_id)

    @grpc_errors
    async def GetBaseline(self, request, context):
        return baseline_pb2.GetBaselineResponse(baseline=await self._load(*parse_baseline_name(request.name)))

    @grpc_errors
    async def ListBaselines(self, request, context):
        monitor_id = parse_monitor_name(request.parent, "parent")
        size = page_size(request.page_size)
        after = decode_page_token(request.page_token)
        await asyncio.to_thread(self._store.get_monitor, monitor_id)  # NOT_FOUND for an unknown monitor
        stored = await asyncio.to_thread(self._store.list_baselines, monitor_id)
        ids = [b.baseline_id for b in stored]
        start = ids.index(after) + 1 if after in ids else 0
        page = ids[start:start + size]
        token = encode_page_token(page[-1]) if start + size < len(ids) else ""
        return baseline_pb2.ListBaselinesResponse(baselines=[await self._load(monitor_id, b) for b in page], next_page_token=token)

    @grpc_errors
    async def ActivateBaseline(self, request, context):
        monitor_id, baseline_id = parse_baseline_name(request.name)
        await asyncio.to_thread(self._store.activate_baseline, monitor_id, baseline_id)
        await self._on_activate(monitor_id)
        return baseline_pb2.ActivateBaselineResponse(baseline=await self._load(monitor_id, baseline_id))

"""The Python client against a real driftd on loopback: defaults that just work, exactly-once
counting across retries and forced reconnects, backpressure, a server that is down, bad input."""

from __future__ import annotations

import asyncio
import socket
import threading
import time

import numpy as np
import pandas as pd
import pytest

from driftd.client import Client
from driftd.client.aio import AsyncClient
from driftd.v1 import snapshot_pb2 as s
from support import start_served, stop_served

FEATURES = ["f0", "f1", "f2"]


def frame(n: int, seed: int, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({f: rng.normal(size=n) for f in FEATURES})
    df["f1"] += shift
    df["plan"] = rng.choice(["free", "pro", "team"], size=n, p=[0.6, 0.3, 0.1])
    df["p_churn"] = rng.beta(2, 5, size=n)
    return df


def log_frame(monitor, df: pd.DataFrame, chunk: int = 500, ids: bool = False) -> None:
    for start in range(0, len(df), chunk):
        part = df.iloc[start:start + chunk]
        monitor.log(part[FEATURES + ["plan"]], scores=part[["p_churn"]].to_numpy(),
                    latency_ms=np.full(len(part), 12.0), request_ids=[f"r{start + k}" for k in range(len(part))] if ids else None)


def latest(served, monitor_id: str):
    with Client(f"127.0.0.1:{served.port}") as client:
        return client.monitor(monitor_id).snapshot()


async def evaluate(served, monitor_id="churn"):
    await (await served.server.runtimes.get(monitor_id)).evaluate()


@pytest.fixture
async def served(tmp_path):
    srv = await start_served(tmp_path / "data")
    yield srv
    await stop_served(srv)


def setup(client: Client, monitor_id: str = "churn", **kw) -> None:
    ref = frame(3000, seed=0)
    client.create_monitor_from_frame(monitor_id, ref, scores=["p_churn"], pane_seconds=3600, **kw)
    client.create_baseline(monitor_id, ref, git_commit="abc", source="unit")


async def test_defaults_that_just_work_no_drift_then_drift(served):
    def scenario():
        with Client(f"127.0.0.1:{served.port}") as client:
            setup(client)
            monitor = client.monitor("churn")
            assert [f.name for f in monitor.monitor.schema.categorical_features] == ["plan"]
            log_frame(monitor, frame(4000, seed=1))
            for k in range(50):  # single rows, mixed in
                monitor.log(features={"f0": 0.1, "f1": -0.2, "f2": 0.0, "plan": "pro"}, scores=[0.3], latency_ms=10.0)
            assert monitor.flush(30)
            return monitor.stats

    stats = await asyncio.to_thread(scenario)
    assert stats.rows_acked == 4050 and stats.rows_rejected == 0 and stats.rows_dropped == 0
    await evaluate(served)
    snap = await asyncio.to_thread(latest, served, "churn")
    assert snap.row_count == 4050
    assert all(f.verdict != s.VERDICT_CRITICAL for f in snap.numeric_features)

    def shifted():
        with Client(f"127.0.0.1:{served.port}") as client:
            setup(client, "churn-shifted")
            log_frame(client.monitor("churn-shifted"), frame(4000, seed=2, shift=1.0))
            client.flush(30)

    await asyncio.to_thread(shifted)
    await evaluate(served, "churn-shifted")
    snap = await asyncio.to_thread(latest, served, "churn-shifted")
    flagged = {f.feature for f in snap.numeric_features if f.verdict == s.VERDICT_CRITICAL}
    assert flagged == {"f1"}


class Proxy:
    """A TCP proxy on loopback that the test can cut, to force reconnects mid-stream."""

    def __init__(self, upstream: int) -> None:
        self.upstream = upstream
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.sock.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.upstream))
            self.conns += [client, server]
            for a, b in ((client, server), (server, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(a: socket.socket, b: socket.socket) -> None:
        try:
            while data := a.recv(65536):
                b.sendall(data)
        except OSError:
            pass
        finally:
            for x in (a, b):
                try:
                    x.close()
                except OSError:
                    pass

    def cut(self) -> None:
        for c in list(self.conns):
            try:
                c.shutdown(socket.SHUT_RDWR)
                c.close()
            except OSError:
                pass
        self.conns.clear()


async def test_exactly_once_across_forced_reconnects_and_backpressure(served):
    with Client(f"127.0.0.1:{served.port}") as admin:
        await asyncio.to_thread(setup, admin)
    runtime = await served.server.runtimes.get("churn")
    runtime._limits = type(runtime._limits)(max_batches=2, retry_after_s=0.02)  # backpressure often
    proxy = Proxy(served.port)
    data = frame(20_000, seed=3)

    def produce():
        with Client(f"127.0.0.1:{proxy.port}", min_batch_bytes=16 * 1024, max_batch_bytes=64 * 1024, linger_s=0.01) as client:
            monitor = client.monitor("churn")
            acked_at_cut = -1
            for k, start in enumerate(range(0, len(data), 1000)):
                log_frame(monitor, data.iloc[start:start + 1000])
                if k in (5, 12):
                    # cut only once the previous cut was survived (a new stream delivered acks), so each cut
                    # breaks a live connection even on a loaded machine
                    deadline = time.monotonic() + 20
                    while (monitor.stats.rows_acked <= acked_at_cut or monitor.stats.reconnects < (k == 12)) \
                            and time.monotonic() < deadline:
                        time.sleep(0.01)
                    time.sleep(0.05)
                    acked_at_cut = monitor.stats.rows_acked
                    proxy.cut()  # break the connection with batches in flight
            assert monitor.flush(60), monitor.stats
            return monitor.stats

    stats = await asyncio.to_thread(produce)
    assert stats.reconnects >= 2 and stats.batches_retried >= 1
    assert stats.rows_acked == 20_000 and stats.rows_rejected == 0 and stats.rows_dropped == 0
    await evaluate(served)
    snap = (await served.server.runtimes.get("churn")).latest_snapshot
    assert snap["row_count"] == 20_000  # nothing lost, nothing counted twice
    assert runtime.counters.accepted_rows == 20_000


def test_server_down_buffer_bounded_and_drops_counted():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    client = Client(f"127.0.0.1:{dead_port}", buffer_rows=1000)
    from driftd.client.client import MonitorHandle
    from driftd.v1 import monitor_pb2

    mon = monitor_pb2.Monitor(name="monitors/x")
    mon.schema.numeric_features.add(name="a")
    handle = MonitorHandle(client, mon)  # no server to ask for the schema
    accepted = sum(handle.log(features={"a": float(k)}) for k in range(5000))
    assert accepted == 1000
    assert handle.stats.rows_dropped == 4000 and handle.stats.rows_logged == 5000
    assert handle._sender._buffered <= 1000
    assert not handle.flush(0.5)
    handle._sender._closing = True


async def test_bad_input_raises_immediately(served):
    def scenario():
        with Client(f"127.0.0.1:{served.port}") as client:
            setup(client)
            monitor = client.monitor("churn")
            with pytest.raises(ValueError, match="unknown feature"):
                monitor.log(features={"nope": 1.0}, scores=[0.1])
            with pytest.raises(ValueError, match="score output"):
                monitor.log(features={"f0": 1.0})
            with pytest.raises(ValueError, match="same number of rows"):
                monitor.log({"f0": np.zeros(3)}, scores=np.zeros((4, 1)))
            return monitor.stats.rows_logged

    assert await asyncio.to_thread(scenario) == 0


async def test_labels_watch_and_async_client(served):
    async with AsyncClient(f"127.0.0.1:{served.port}") as client:
        ref = frame(3000, seed=0)
        await client.create_monitor_from_frame("churn", ref, scores=["p_churn"], pane_seconds=3600)
        await client.create_baseline("churn", ref)
        monitor = await client.monitor("churn")
        df = frame(400, seed=4)
        for start in range(0, 400, 100):
            part = df.iloc[start:start + 100]
            monitor.log(part[FEATURES + ["plan"]], scores=part[["p_churn"]].to_numpy(), request_ids=[f"q{start + k}" for k in range(100)])
        assert await monitor.flush(30)
        labels = (df["p_churn"].to_numpy() >= 0.5).astype(float)
        joined = await monitor.log_labels([f"q{k}" for k in range(400)], labels)
        assert joined.matched == 400
        watch = monitor.watch_snapshots().__aiter__()
        task = asyncio.ensure_future(watch.__anext__())
        await asyncio.sleep(0.2)
        await evaluate(served)
        snap = await asyncio.wait_for(task, 10)
        assert snap.row_count == 400 and snap.label_quality.labelled_count == 400 and snap.label_quality.accuracy == 1.0
        await watch.aclose()

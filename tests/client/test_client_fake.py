"""The Python client against an in-process fake server with injected faults (tests/client/fake_server.py):
exactly-once delivery across backpressure and forced reconnects, bounded buffer while the server is
down, flush / close semantics, message size limits, every input shape, caller-side errors, auth,
labels / snapshots / baselines, and the asyncio variant."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from client.fake_server import FakeServer, FakeState
from driftd.client import Client
from driftd.client.aio import AsyncClient

KiB = 1024
F = [f"f{k}" for k in range(8)]


def rows(start: int, n: int) -> np.ndarray:
    """Row i carries i in column 0, so the server can check every row arrived exactly once."""
    a = np.random.default_rng(start).normal(size=(n, len(F))).astype(np.float32)
    a[:, 0] = np.arange(start, start + n, dtype=np.float32)
    return a


def assert_exactly_once(state: FakeState, total: int) -> None:
    got = np.sort(state.column("numeric")[:, 0])
    np.testing.assert_array_equal(got, np.arange(total, dtype=np.float32))


def test_exactly_once_across_backpressure_and_forced_reconnects(server):
    st = server.state
    st.exhaust_next = 3
    st.retry_delay_s = 0.05
    st.abort_after = [4, 7]  # two streams are killed right after applying a batch, before its ack
    with Client(server.target, max_batch_bytes=64 * KiB, min_batch_bytes=16 * KiB, linger_s=0.01) as client:
        mon = client.monitor("m")
        total = 0
        for _ in range(40):
            mon.log(rows(total, 1000))
            total += 1000
        assert mon.flush(timeout=20)
        s = mon.stats
    assert_exactly_once(st, total)
    assert s.rows_logged == s.rows_acked == total and s.rows_dropped == 0 and s.rows_rejected == 0
    assert s.reconnects >= 2 and s.batches_retried >= 3
    assert st.duplicates >= 2  # the applied-but-unacked batches came again and were deduplicated
    assert st.streams >= 3
    seqs = [seq for _, seq, _ in st.received]
    assert min(seqs) == 1 and 0 not in seqs
    applied = sorted(a.sequence for a in st.applied)
    assert applied == list(range(1, len(applied) + 1))  # gap-free, each sequence applied once


def test_retry_info_delay_is_honoured(server):
    st = server.state
    st.exhaust_next = 1
    st.retry_delay_s = 0.4
    with Client(server.target) as client:
        mon = client.monitor("m")
        mon.log(rows(0, 10))
        assert mon.flush(timeout=10)
    times = st.receive_times[(client.producer_id, 1)]
    assert len(times) == 2 and times[1] - times[0] >= 0.38
    assert st.applied_rows() == 10


def test_a_short_retry_delay_still_backs_off_exponentially(server):
    """The server asks for 10 ms each time; the client waits at least its own growing backoff
    (>= 25, 50, 100, 200 ms with jitter), so a full queue is not hammered."""
    st = server.state
    st.exhaust_next = 4
    st.retry_delay_s = 0.01
    with Client(server.target) as client:
        mon = client.monitor("m")
        mon.log(rows(0, 10))
        assert mon.flush(timeout=20)
    times = st.receive_times[(client.producer_id, 1)]
    gaps = np.diff(times)
    assert len(times) == 5 and all(g >= 0.5 * 0.05 * 2 ** i - 0.005 for i, g in enumerate(gaps)), gaps
    assert st.applied_rows() == 10


def test_buffer_is_bounded_while_server_is_down_and_drains_after(server):
    port = server.port
    # The first stream can be opened as the server goes away; grpcio then may end the call
    # (UNAVAILABLE) but leave its iterator blocked for good (seen in CI: reconnects=0, one batch
    # sent, never acked). The sender reads acks in a thread of its own and gives such a stream up
    # (tests/client/test_stream_reader.py); ack_timeout_s covers a stream that never ends at all.
    client = Client(server.target, buffer_rows=5000, linger_s=0.01, ack_timeout_s=2.0)
    mon = client.monitor("m")
    server.stop()
    t0 = time.perf_counter()
    for i in range(20_000):
        mon.log(features={"f0": float(i), "f1": 1.0})
    elapsed = time.perf_counter() - t0
    s = mon.stats
    assert s.rows_logged == 20_000
    assert s.rows_dropped == 15_000  # at most buffer_rows are held (waiting or unacked)
    assert mon._sender._buffered + mon._sender._inflight_rows <= 5000  # waiting + unacked rows
    assert elapsed < 5  # log() kept returning at once with nobody listening
    assert mon.flush(timeout=0.3) is False
    back = FakeServer(server.state, port=port).start()
    try:
        assert mon.flush(timeout=20), (mon.stats, mon._sender._buffered, mon._sender._inflight_rows, len(mon._sender._unacked))
        assert server.state.applied_rows() == s.rows_acked == 20_000 - s.rows_dropped
        # the rows that were kept are the first ones, each exactly once
        np.testing.assert_array_equal(np.sort(server.state.column("numeric")[:, 0]), np.arange(s.rows_acked, dtype=np.float32))
    finally:
        client.close()
        back.stop()


def test_flush_waits_for_acks_and_times_out(server):
    server.state.ack_delay_s = 0.3
    client = Client(server.target, linger_s=10)  # the timer alone would not send for 10 s
    mon = client.monitor("m")
    mon.log(rows(0, 100))
    assert mon.flush(timeout=0.05) is False
    assert mon.stats.rows_acked == 0
    t0 = time.monotonic()
    assert mon.flush(timeout=10)
    assert mon.stats.rows_acked == 100
    mon.log(rows(100, 50))
    assert client.close() is True  # close flushes
    assert time.monotonic() - t0 >= 0.3
    assert server.state.applied_rows() == 150
    assert mon.log(rows(150, 1)) is False and mon.stats.rows_dropped == 1  # closed: counted, not sent


def test_linger_timer_sends_without_flush(server):
    with Client(server.target, linger_s=0.1) as client:
        mon = client.monitor("m")
        mon.log(features={"f0": 0.0})
        deadline = time.monotonic() + 3
        while server.state.applied_rows() < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.state.applied_rows() == 1


def test_message_sizes_stay_within_limits(server):
    with Client(server.target, max_batch_bytes=64 * KiB, min_batch_bytes=32 * KiB, linger_s=30) as client:
        mon = client.monitor("m")
        mon.log(rows(0, 50_000))  # one 1.6 MB block: must be split
        for i in range(3000):
            mon.log(features={f: float(50_000 + i) if f == "f0" else 0.5 for f in F})
        assert mon.flush(timeout=20)
    sizes = [size for _, _, size in server.state.received]
    assert max(sizes) <= 64 * KiB
    assert all(size >= 0.7 * 32 * KiB for size in sizes[:-1])  # coalesced up to min_batch_bytes before sending
    assert_exactly_once(server.state, 53_000)


def test_inputs_single_rows_numpy_dicts_frames_and_categories():
    srv = FakeServer().start()
    srv.add_monitor("c", numeric=["amount", "age"], categorical={"country": ["de", "fr", "us"]},
                    embeddings={"text": 4}, scores=["p"])
    try:
        with Client(srv.target) as client:
            mon = client.monitor("c")
            emb = np.arange(4, dtype=np.float32)
            mon.log(features={"amount": 1.5, "country": "fr"}, embeddings={"text": emb}, scores=[0.9], latency_ms=3.0,
                    status_codes=200, request_ids="r0")
            mon.log(features={"amount": 2.5, "age": 40, "country": "zz"}, embeddings={"text": emb}, scores=[0.1],
                    latency_ms=4.0, status_codes=503, request_ids="r1")
            mon.log(features={"age": 41, "country": None}, embeddings={"text": emb}, scores=[0.2], latency_ms=5.0,
                    status_codes=200, request_ids="r2")
            mon.log(features={"amount": 3.0, "country": 2}, embeddings={"text": emb}, scores=[0.3], latency_ms=6.0,
                    status_codes=200, request_ids="r3")
            assert mon.flush(timeout=10)
            df = pd.DataFrame({"amount": [10.0, 11.0], "age": [1, 2], "country": pd.Categorical(["us", "de"])})
            mon.log(df, embeddings={"text": np.ones((2, 4))}, scores=np.array([[0.5], [0.6]]), latency_ms=[1, 2],
                    status_codes=[200, 200], request_ids=["r4", "r5"])
            mon.log({"amount": np.array([7.0]), "country": np.array(["de"])}, embeddings={"text": np.zeros((1, 4))},
                    scores=[[0.7]], latency_ms=[1], status_codes=[200], request_ids=["r6"])
            assert mon.flush(timeout=10)
        st = srv.state
        num, cat = st.column("numeric"), st.column("categorical")
        np.testing.assert_array_equal(num[:, 0], np.array([1.5, 2.5, np.nan, 3.0, 10.0, 11.0, 7.0], np.float32))
        np.testing.assert_array_equal(num[:, 1], np.array([np.nan, 40, 41, np.nan, 1, 2, np.nan], np.float32))
        # known name -> its index, unknown name -> len(categories) (unseen), None / missing column -> -1, int -> code
        np.testing.assert_array_equal(cat[:, 0], [1, 3, -1, 2, 2, 0, 0])
        assert cat.dtype == np.int64 and num.dtype == np.float32
        np.testing.assert_array_equal(st.column("scores")[:, 0], np.array([0.9, 0.1, 0.2, 0.3, 0.5, 0.6, 0.7], np.float32))
        np.testing.assert_array_equal(st.column("status_codes"), [200, 503, 200, 200, 200, 200, 200])
        assert st.column("emb:text").shape == (7, 4)
        assert [r for a in st.applied for r in a.request_ids] == [f"r{k}" for k in range(7)]
    finally:
        srv.stop()


def test_caller_errors_raise_value_error_at_once():
    srv = FakeServer().start()
    srv.add_monitor("c", numeric=["amount"], categorical={"country": ["de"]}, embeddings={"text": 4}, scores=["p"])
    try:
        with Client(srv.target) as client:
            mon = client.monitor("c")
            with pytest.raises(ValueError, match="unknown feature"):
                mon.log(features={"amuont": 1.0}, embeddings={"text": np.zeros(4)}, scores=[0.1])
            with pytest.raises(ValueError, match="unknown feature"):
                mon.log({"amuont": np.zeros(3)}, embeddings={"text": np.zeros((3, 4))}, scores=np.zeros((3, 1)))
            with pytest.raises(ValueError, match=r"\[N, 4\]"):
                mon.log({"amount": np.zeros(3)}, embeddings={"text": np.zeros((3, 5))}, scores=np.zeros((3, 1)))
            with pytest.raises(ValueError, match="same number of rows"):
                mon.log({"amount": np.zeros(3)}, embeddings={"text": np.zeros((3, 4))}, scores=np.zeros((2, 1)))
            with pytest.raises(ValueError, match="embedding"):
                mon.log(features={"amount": 1.0}, scores=[0.1])
            with pytest.raises(ValueError, match="categorical"):
                mon.log(np.zeros((3, 1)), embeddings={"text": np.zeros((3, 4))}, scores=np.zeros((3, 1)))
            assert mon.stats.rows_logged == 0
    finally:
        srv.stop()


def test_rejected_batches_are_counted_not_retried(server):
    server.state.reject_next = 1
    with Client(server.target) as client:
        mon = client.monitor("m")
        mon.log(rows(0, 10))
        assert mon.flush(timeout=10)
        mon.log(rows(10, 5))
        assert mon.flush(timeout=10)
        s = mon.stats
    assert s.rows_rejected == 10 and s.rows_acked == 5
    assert "INVALID_ARGUMENT" in s.last_error and "batch.numeric" in s.last_error
    assert len(server.state.received) == 2  # the rejected batch was not sent again


def test_unauthenticated_stream_stops_and_flush_raises(server):
    server.state.ingest_token = "right"  # the fake checks it on StreamBatches only (GetMonitor stays open)
    client = Client(server.target, token="wrong")
    mon = client.monitor("m")
    mon.log(rows(0, 10))
    with pytest.raises(RuntimeError, match="UNAUTHENTICATED"):
        mon.flush(timeout=10)
    assert "UNAUTHENTICATED" in mon.stats.last_error
    assert server.state.applied_rows() == 0
    client.close(timeout=0.1)


def test_bearer_token_is_sent(server):
    server.state.ingest_token = "s3cret"
    with Client(server.target, token="s3cret", producer_id="pod-7") as client:
        mon = client.monitor("m")
        mon.log(rows(0, 3))
        assert mon.flush(timeout=10)
    assert server.state.metadata[0]["authorization"] == "Bearer s3cret"
    assert {a.producer_id for a in server.state.applied} == {"pod-7"}


def test_monitor_from_frame_baseline_labels_and_snapshots():
    srv = FakeServer().start()
    try:
        rng = np.random.default_rng(0)
        df = pd.DataFrame({"amount": rng.normal(size=500), "plan": rng.choice(["free", "pro"], 500),
                           "n_items": rng.integers(0, 3, 500), "p": rng.random(500)})
        with Client(srv.target) as client:
            mon_proto = client.create_monitor_from_frame("f", df, scores=["p"], embeddings={"text": np.zeros((500, 3))})
            s = mon_proto.schema
            assert [f.name for f in s.numeric_features] == ["amount"]
            assert {f.name: list(f.categories) for f in s.categorical_features} == {"plan": ["free", "pro"], "n_items": ["0", "1", "2"]}
            assert [(b.name, b.dim) for b in s.embedding_blocks] == [("text", 3)]
            assert [o.name for o in s.score_outputs] == ["p"]
            base = client.create_baseline("f", df, embeddings={"text": rng.normal(size=(500, 3))}, git_commit="abc",
                                          source="unit", rows_per_batch=200)
            assert base.row_count == 500 and base.active and base.git_commit == "abc"
            header, batches = srv.state.baselines[0]
            assert header.parent == "monitors/f" and header.activate and len(batches) == 3
            assert np.concatenate([b["scores"] for b in batches])[:, 0].tolist() == pytest.approx(df["p"].tolist(), rel=1e-6)
            mon = client.monitor("f")
            mon.log(df.drop(columns=["p"]).head(10), embeddings={"text": np.zeros((10, 3))}, scores=df[["p"]].head(10).to_numpy(),
                    request_ids=[f"r{k}" for k in range(10)])
            res = mon.log_labels(["r1", "r2", "nope"], [1, 0, 1])
            assert (res.matched, res.unmatched) == (2, 1)
            assert mon.snapshot().row_count == 10
            assert [snap.name for snap in mon.watch_snapshots()] == [f"monitors/f/snapshots/{k}" for k in (1, 2, 3)]
    finally:
        srv.stop()


async def test_async_client(server):
    server.state.abort_after = [2]
    async with AsyncClient(server.target, max_batch_bytes=16 * KiB, min_batch_bytes=4 * KiB, linger_s=0.01) as client:
        mon = await client.monitor("m")
        for k in range(10):
            assert mon.log(rows(k * 500, 500))
        assert await mon.flush(timeout=20)
        assert mon.stats.rows_acked == 5000 and mon.stats.reconnects >= 1
        assert (await mon.snapshot()).row_count == 5000
        names = [s.name async for s in mon.watch_snapshots()]
        assert len(names) == 3
    assert_exactly_once(server.state, 5000)


def test_rows_compacted_while_down_keep_every_column():
    srv = FakeServer().start()
    srv.add_monitor("c", numeric=["amount"], categorical={"country": ["de", "fr"]}, scores=["p"])
    srv.state.refuse_streams = True  # up, but every ingest stream ends with UNAVAILABLE (draining): the sender keeps reconnecting
    client = Client(srv.target, linger_s=60)  # nothing is sent before the flush below: every row waits in the buffer
    try:
        mon = client.monitor("c")
        for i in range(3000):
            mon.log(features={"amount": float(i), "country": ["de", "fr", "xx", None][i % 4]}, scores=[i / 3000],
                    latency_ms=float(i % 7), status_codes=200 + i % 2, request_ids=f"r{i}")
        deadline = time.monotonic() + 10
        while (mon._sender._items or mon._sender._compacting) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not mon._sender._items and mon._sender._front and not mon._sender._front[0].single
        assert "UNAVAILABLE" in mon.stats.last_error and mon.stats.reconnects >= 1
        srv.state.refuse_streams = False
        assert mon.flush(timeout=20)
        st = srv.state
        order = np.argsort(st.column("numeric")[:, 0])
        np.testing.assert_array_equal(st.column("numeric")[order, 0], np.arange(3000, dtype=np.float32))
        np.testing.assert_array_equal(st.column("categorical")[order, 0], np.tile([0, 1, 2, -1], 750))
        np.testing.assert_allclose(st.column("scores")[order, 0], np.arange(3000) / 3000, rtol=1e-6)
        np.testing.assert_array_equal(st.column("latency_ms")[order], np.arange(3000) % 7)
        np.testing.assert_array_equal(st.column("status_codes")[order], 200 + np.arange(3000) % 2)
        ids = [r for a in st.applied for r in a.request_ids]
        assert sorted(ids) == sorted(f"r{i}" for i in range(3000))
    finally:
        client.close(timeout=1)
        srv.stop()


def test_close_while_down_abandons_and_counts(server, monkeypatch):
    errors = []
    monkeypatch.setattr("threading.excepthook", lambda args: errors.append(args.exc_value))
    client = Client(server.target, linger_s=0.01)
    mon = client.monitor("m")
    server.stop()
    mon.log(rows(0, 100))
    for i in range(50):
        mon.log(features={"f0": float(i)})
    t0 = time.monotonic()
    assert client.close(timeout=0.3) is False
    assert time.monotonic() - t0 < 6
    s = mon.stats
    assert s.rows_logged == 150 and s.rows_acked == 0 and s.rows_dropped == 150
    assert "not acknowledged" in s.last_error
    mon._sender._thread.join(timeout=6)
    assert not mon._sender._thread.is_alive() and errors == []


def test_stream_without_acks_is_abandoned_and_batches_resent(server):
    server.state.stall_once_s = 5.0  # the first batch is applied, then its ack hangs
    with Client(server.target, ack_timeout_s=0.5, linger_s=0.01) as client:
        mon = client.monitor("m")
        t0 = time.monotonic()
        mon.log(rows(0, 100))
        assert mon.flush(timeout=10)
        assert time.monotonic() - t0 < 4  # did not wait for the stalled ack
        s = mon.stats
    assert s.rows_acked == 100 and s.reconnects >= 1
    assert server.state.duplicates == 1  # the resend was recognised as already applied
    assert_exactly_once(server.state, 100)


def test_rows_with_and_without_optional_groups_never_share_a_batch(server):
    """Latencies / status codes / request ids go in a batch for all its rows or none: mixing rows
    that carry them with rows that do not must split batches, never drop the values."""
    with Client(server.target, linger_s=10) as client:  # everything waits for flush(): one chance to mix
        mon = client.monitor("m")
        block = rows(0, 100)
        mon.log(block[:40])                                                   # no latency
        mon.log(block[40:70], latency_ms=np.full(30, 7.0), request_ids=[f"r{i}" for i in range(40, 70)])
        for i in range(70, 100):                                              # single rows, latency only
            mon.log(features={f: float(block[i, k]) for k, f in enumerate(F)}, latency_ms=9.0)
        assert mon.flush(10)
    assert_exactly_once(server.state, 100)
    latency = np.sort(server.state.column("latency_ms"))
    np.testing.assert_array_equal(latency, np.r_[np.full(30, 7.0), np.full(30, 9.0)].astype(np.float32))
    with server.state.lock:
        ids = [rid for a in server.state.applied for rid in a.request_ids]
    assert ids == [f"r{i}" for i in range(40, 70)]


def test_flush_waits_only_for_rows_logged_before_it(server):
    """Under steady logging, flush() returns once the earlier rows are acked; later rows do not
    hold it up (it used to wait for an empty buffer, which steady traffic never gives)."""
    import threading

    server.state.ack_delay_s = 0.05  # something is always in flight while rows keep coming
    client = Client(server.target, linger_s=0.01)
    mon = client.monitor("m")
    mon.log(rows(0, 500))
    stop = threading.Event()

    def steady():
        i = 500
        while not stop.is_set():
            mon.log(features={f: float(i) for f in F})
            i += 1
            time.sleep(0.002)

    logger = threading.Thread(target=steady)
    logger.start()
    try:
        time.sleep(0.1)
        t0 = time.perf_counter()
        assert mon.flush(timeout=3)
        assert time.perf_counter() - t0 < 2
        assert server.state.applied_rows() >= 500
    finally:
        stop.set()
        logger.join()
        client.close()


def test_categorical_codes_one_rule_for_rows_and_blocks():
    """Missing: None, NaN, "", "None", "nan"; an integral value in int32 range is a code; +-inf,
    fractions, out-of-range numbers and unknown names are unseen (= number of categories). The Node
    client applies the same rule (clients/node/src/rows.ts)."""
    from driftd.client._rows import _categorical_codes, _code

    cats = ("a", "b", "c")
    index = {c: i for i, c in enumerate(cats)}
    singles = [None, float("nan"), "", "None", "nan", 1, 2.0, float("inf"), -float("inf"), 1.5, 2 ** 40, "b", "zzz"]
    expected = [-1, -1, -1, -1, -1, 1, 2, 3, 3, 3, 3, 1, 3]
    assert [_code(v, index) for v in singles] == expected
    floats = np.array([np.nan, 1.0, 2.0, np.inf, -np.inf, 1.5, 2.0 ** 40])
    np.testing.assert_array_equal(_categorical_codes(floats, cats), [-1, 1, 2, 3, 3, 3, 3])
    np.testing.assert_array_equal(_categorical_codes(np.array([0, 2, 2 ** 40]), cats), [0, 2, 3])
    np.testing.assert_array_equal(_categorical_codes(np.array(["a", "", "None", "zzz"], dtype=object), cats), [0, -1, -1, 3])

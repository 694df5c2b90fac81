"""SQLite store: migrations, monitors, immutable baselines, the gap-free alarm log, snapshot retention."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from hypothesis import given, settings, strategies as st

from driftd.server.domain.errors import AlreadyExists, NotFound, OutOfRange
from driftd.server.domain.monitor import MonitorSpec
from driftd.server.domain.schema import NumericFeature, Schema
from driftd.server.store.migrations import available_migrations
from driftd.server.store.sqlite import SqliteStore

SPEC = MonitorSpec(schema=Schema(numeric=(NumericFeature("x"),)))
T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)


@pytest.fixture
def store(tmp_path):
    s = SqliteStore.open_data_dir(tmp_path)
    yield s
    s.close()


def test_migrations_apply_once_in_order_and_wal(tmp_path):
    s = SqliteStore.open_data_dir(tmp_path)
    latest = available_migrations()[-1][0]
    assert s.applied_migrations == list(range(1, latest + 1))
    assert s.schema_version() == latest
    assert s._query("PRAGMA journal_mode")[0][0] == "wal"
    s.close()
    again = SqliteStore.open_data_dir(tmp_path)
    assert again.applied_migrations == []
    again.close()


def test_newer_database_is_refused(tmp_path):
    s = SqliteStore.open_data_dir(tmp_path)
    s._conn.execute("INSERT INTO schema_migrations VALUES (999, '0999_future.sql', 'x')")
    s.close()
    with pytest.raises(RuntimeError, match="newer than this driftd"):
        SqliteStore.open_data_dir(tmp_path)


def test_monitor_crud(store):
    created = store.create_monitor("a", SPEC)
    assert store.get_monitor("a") == created
    with pytest.raises(AlreadyExists):
        store.create_monitor("a", SPEC)
    store.create_monitor("b", SPEC)
    assert [m.monitor_id for m in store.list_monitors()] == ["a", "b"]
    assert [m.monitor_id for m in store.list_monitors(after_id="a")] == ["b"]
    store.delete_monitor("a")
    with pytest.raises(NotFound):
        store.get_monitor("a")
    with pytest.raises(NotFound):
        store.delete_monitor("a")


def test_baselines_are_immutable_and_activation_never_rewrites(store):
    store.create_monitor("a", SPEC)
    store.put_baseline("a", "b1", blob=b"one", data_hash="h1", format_version=1, metadata={"model_id": "m"}, activate=True)
    store.put_baseline("a", "b2", blob=b"two", data_hash="h2", format_version=1, metadata={})
    with pytest.raises(AlreadyExists):
        store.put_baseline("a", "b1", blob=b"other", data_hash="h", format_version=1, metadata={})
    assert store.get_monitor("a").active_baseline_id == "b1"
    store.activate_baseline("a", "b2")
    assert store.get_monitor("a").active_baseline_id == "b2"
    assert store.get_baseline("a", "b1").blob == b"one"
    with pytest.raises(sqlite3.DatabaseError, match="immutable"):
        store._conn.execute("UPDATE baselines SET blob = x'00' WHERE baseline_id = 'b1'")
    with pytest.raises(NotFound):
        store.activate_baseline("a", "nope")
    with pytest.raises(NotFound):
        store.put_baseline("ghost", "b", blob=b"", data_hash="", format_version=1, metadata={})
    assert [b.baseline_id for b in store.list_baselines("a")] == ["b2", "b1"]
    # deleting the monitor removes its baselines (cascade) — the only way a baseline goes away
    store.delete_monitor("a")
    assert store.list_baselines("a") == []


@settings(max_examples=25, deadline=None)
@given(batches=st.lists(st.integers(min_value=1, max_value=5), min_size=1, max_size=8), keep=st.integers(min_value=1, max_value=10))
def test_alarm_sequences_gap_free_across_prune_and_reopen(tmp_path_factory, batches, keep):
    path = tmp_path_factory.mktemp("log")
    store = SqliteStore.open_data_dir(path)
    seqs = []
    for i, n in enumerate(batches):
        seqs += store.append_alarm_events([("m", f"a{i}", T0, {"i": i, "j": j}) for j in range(n)])
        store.prune_alarm_events(keep)
        if i % 2:
            store.close()
            store = SqliteStore.open_data_dir(path)
    assert seqs == list(range(1, sum(batches) + 1))
    assert store.alarm_high_water() == sum(batches)
    retained = store.read_alarm_events(sum(batches) - min(keep, sum(batches)))
    assert [e.sequence for e in retained] == seqs[-keep:]
    store.close()


def test_expired_cursor_is_out_of_range(store):
    store.append_alarm_events([("m", "a", T0, {"k": k}) for k in range(10)])
    store.prune_alarm_events(3)  # keeps 8, 9, 10
    assert [e.sequence for e in store.read_alarm_events(7)] == [8, 9, 10]
    assert store.read_alarm_events(10) == []
    with pytest.raises(OutOfRange) as err:
        store.read_alarm_events(5)
    assert err.value.reason == "CURSOR_EXPIRED"
    assert err.value.metadata["oldest_sequence"] == "8"


def test_snapshot_retention_and_lookup(store):
    store.create_monitor("a", SPEC)
    ids = [store.put_snapshot("a", T0 + timedelta(minutes=i), f"s{i}".encode(), keep_last=3) for i in range(5)]
    assert ids == [1, 2, 3, 4, 5]
    assert [s.snapshot_id for s in store.list_snapshots("a")] == [5, 4, 3]
    assert store.get_snapshot("a").payload == b"s4"
    assert store.get_snapshot("a", at_or_before=T0 + timedelta(minutes=3, seconds=30)).snapshot_id == 4
    assert store.get_snapshot("a", snapshot_id=3).payload == b"s2"
    with pytest.raises(NotFound):
        store.get_snapshot("a", snapshot_id=1)
    assert [s.snapshot_id for s in store.list_snapshots("a", before_id=5, limit=1)] == [4]


def test_producer_sequences_only_move_forward(store):
    store.create_monitor("a", SPEC)
    store.record_producer_sequences("a", {"p1": 5, "p2": 1})
    store.record_producer_sequences("a", {"p1": 3})
    assert store.last_producer_sequences("a") == {"p1": 5, "p2": 1}

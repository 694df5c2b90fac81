"""The embedded store: one SQLite database in WAL mode under the data directory.

Thread-safe (one connection behind a lock; the transport calls it from a worker thread, never on
the event loop for long). Every write is one transaction, so a crash leaves either all of a change
or none of it.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from driftd.server.domain.errors import AlreadyExists, FailedPrecondition, NotFound, OutOfRange
from driftd.server.domain.monitor import Monitor, MonitorSpec, monitor_name
from driftd.server.store.migrations import available_migrations, current_version, migrate

DB_FILE = "driftd.sqlite3"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def _ts(dt: datetime) -> str:
    return dt.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _dt(text: str) -> datetime:
    return datetime.fromisoformat(text)


@dataclass(frozen=True)
class StoredBaseline:
    monitor_id: str
    baseline_id: str
    create_time: datetime
    data_hash: str
    format_version: int
    metadata: dict[str, Any]
    blob: bytes | None  # None when listed without blobs


@dataclass(frozen=True)
class StoredAlarmEvent:
    sequence: int
    monitor_id: str
    alarm_id: str
    event_time: datetime
    payload: dict[str, Any]


@dataclass(frozen=True)
class StoredSnapshot:
    monitor_id: str
    snapshot_id: int
    evaluate_time: datetime
    payload: bytes


class SqliteStore:
    def __init__(self, path: Path | str, *, read_only: bool = False):
        self.path = Path(path)
        self.read_only = read_only
        self._lock = threading.RLock()
        if read_only:
            # For tools reading a live server's store (`driftd export`): no writes, no migrations.
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, check_same_thread=False,
                                         isolation_level=None, timeout=30.0)
            self.applied_migrations = []
            have, latest = current_version(self._conn), available_migrations()[-1][0]
            if have != latest:
                self._conn.close()
                raise RuntimeError(f"{self.path}: schema version {have}, this driftd expects {latest}; "
                                   "start the matching `driftd serve` once (it migrates), or upgrade driftd")
            self._closed = False
            return
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._conn = sqlite3.connect(str(path), check_same_thread=False, isolation_level=None, timeout=30.0)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self.applied_migrations = migrate(self._conn)
        self._closed = False

    @classmethod
    def open_data_dir(cls, data_dir: Path | str, *, read_only: bool = False) -> "SqliteStore":
        return cls(Path(data_dir) / DB_FILE, read_only=read_only)

    # -- plumbing -------------------------------------------------------------------------------

    def _tx(self):
        store = self

        class _Tx:
            def __enter__(self_inner):
                store._lock.acquire()
                store._conn.execute("BEGIN IMMEDIATE")
                return store._conn

            def __exit__(self_inner, exc_type, exc, tb):
                try:
                    store._conn.execute("COMMIT" if exc_type is None else "ROLLBACK")
                finally:
                    store._lock.release()
                return False

        return _Tx()

    def _query(self, sql: str, args: tuple = ()) -> list[tuple]:
        with self._lock:
            return self._conn.execute(sql, args).fetchall()

    def schema_version(self) -> int:
        return int(self._query("SELECT MAX(version) FROM schema_migrations")[0][0])

    def flush(self) -> None:
        """Checkpoint the WAL into the main database file."""
        with self._lock:
            if not self._closed:
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                if not self.read_only:
                    self.flush()
                self._conn.close()
                self._closed = True

    # -- monitors ------------------------------------------------------------------------------

    def create_monitor(self, monitor_id: str, spec: MonitorSpec) -> Monitor:
        now = utcnow()
        etag = uuid.uuid4().hex
        try:
            with self._tx() as c:
                c.execute(
                    "INSERT INTO monitors (monitor_id, spec_json, create_time, update_time, etag) VALUES (?, ?, ?, ?, ?)",
                    (monitor_id, json.dumps(spec.to_dict()), _ts(now), _ts(now), etag),
                )
        except sqlite3.IntegrityError:
            raise AlreadyExists("monitor", monitor_name(monitor_id)) from None
        return Monitor(monitor_id, spec, now, now, etag, None)

    def get_monitor(self, monitor_id: str) -> Monitor:
        rows = self._query(
            "SELECT monitor_id, spec_json, create_time, update_time, etag, active_baseline_id FROM monitors WHERE monitor_id = ?",
            (monitor_id,),
        )
        if not rows:
            raise NotFound("monitor", monitor_name(monitor_id))
        return _monitor_from_row(rows[0])

    def list_monitors(self, after_id: str = "", limit: int = 50) -> list[Monitor]:
        rows = self._query(
            "SELECT monitor_id, spec_json, create_time, update_time, etag, active_baseline_id FROM monitors "
            "WHERE monitor_id > ? ORDER BY monitor_id LIMIT ?",
            (after_id, limit),
        )
        return [_monitor_from_row(r) for r in rows]

    def count_monitors(self) -> int:
        return int(self._query("SELECT COUNT(*) FROM monitors")[0][0])

    def update_monitor(self, monitor_id: str, spec: MonitorSpec, expected_etag: str | None = None) -> Monitor:
        now = utcnow()
        etag = uuid.uuid4().hex
        with self._tx() as c:
            row = c.execute("SELECT etag FROM monitors WHERE monitor_id = ?", (monitor_id,)).fetchone()
            if row is None:
                raise NotFound("monitor", monitor_name(monitor_id))
            if expected_etag and row[0] != expected_etag:
                raise FailedPrecondition(
                    f"monitor {monitor_name(monitor_id)!r} changed since it was read (etag {expected_etag!r} is stale); read it again",
                    reason="ETAG_MISMATCH",
                )
            c.execute(
                "UPDATE monitors SET spec_json = ?, update_time = ?, etag = ? WHERE monitor_id = ?",
                (json.dumps(spec.to_dict()), _ts(now), etag, monitor_id),
            )
        return self.get_monitor(monitor_id)

    def delete_monitor(self, monitor_id: str) -> None:
        with self._tx() as c:
            cur = c.execute("DELETE FROM monitors WHERE monitor_id = ?", (monitor_id,))
            if cur.rowcount == 0:
                raise NotFound("monitor", monitor_name(monitor_id))

    # -- baselines -----------------------------------------------------------------------------

    def put_baseline(self, monitor_id: str, baseline_id: str, *, blob: bytes, data_hash: str, format_version: int,
                     metadata: dict[str, Any], activate: bool = False) -> StoredBaseline:
        now = utcnow()
        try:
            with self._tx() as c:
                if c.execute("SELECT 1 FROM monitors WHERE monitor_id = ?", (monitor_id,)).fetchone() is None:
                    raise NotFound("monitor", monitor_name(monitor_id))
                c.execute(
                    "INSERT INTO baselines (monitor_id, baseline_id, create_time, data_hash, format_version, metadata_json, blob) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (monitor_id, baseline_id, _ts(now), data_hash, format_version, json.dumps(metadata), sqlite3.Binary(blob)),
                )
                if activate:
                    c.execute("UPDATE monitors SET active_baseline_id = ? WHERE monitor_id = ?", (baseline_id, monitor_id))
        except sqlite3.IntegrityError:
            raise AlreadyExists("baseline", f"{monitor_name(monitor_id)}/baselines/{baseline_id}") from None
        return StoredBaseline(monitor_id, baseline_id, now, data_hash, format_version, metadata, blob)

    def get_baseline(self, monitor_id: str, baseline_id: str) -> StoredBaseline:
        rows = self._query(
            "SELECT monitor_id, baseline_id, create_time, data_hash, format_version, metadata_json, blob FROM baselines "
            "WHERE monitor_id = ? AND baseline_id = ?",
            (monitor_id, baseline_id),
        )
        if not rows:
            raise NotFound("baseline", f"{monitor_name(monitor_id)}/baselines/{baseline_id}")
        return _baseline_from_row(rows[0])

    def list_baselines(self, monitor_id: str) -> list[StoredBaseline]:
        rows = self._query(
            "SELECT monitor_id, baseline_id, create_time, data_hash, format_version, metadata_json, NULL FROM baselines "
            "WHERE monitor_id = ? ORDER BY create_time DESC, baseline_id",
            (monitor_id,),
        )
        return [_baseline_from_row(r) for r in rows]

    def activate_baseline(self, monitor_id: str, baseline_id: str) -> None:
        with self._tx() as c:
            if c.execute("SELECT 1 FROM baselines WHERE monitor_id = ? AND baseline_id = ?", (monitor_id, baseline_id)).fetchone() is None:
                raise NotFound("baseline", f"{monitor_name(monitor_id)}/baselines/{baseline_id}")
            c.execute("UPDATE monitors SET active_baseline_id = ?, update_time = ? WHERE monitor_id = ?",
                      (baseline_id, _ts(utcnow()), monitor_id))

    # -- alarm event log -----------------------------------------------------------------------

    def append_alarm_events(self, events: list[tuple[str, str, datetime, dict[str, Any]]]) -> list[int]:
        """Append (monitor_id, alarm_id, event_time, payload) events atomically; return their sequences
        (consecutive, continuing the log with no gap)."""
        if not events:
            return []
        with self._tx() as c:
            (last,) = c.execute("SELECT value FROM counters WHERE name = 'alarm_event_sequence'").fetchone()
            sequences = list(range(last + 1, last + 1 + len(events)))
            c.executemany(
                "INSERT INTO alarm_events (sequence, monitor_id, alarm_id, event_time, payload_json) VALUES (?, ?, ?, ?, ?)",
                [(seq, m, a, _ts(t), json.dumps(p)) for seq, (m, a, t, p) in zip(sequences, events)],
            )
            c.execute("UPDATE counters SET value = ? WHERE name = 'alarm_event_sequence'", (sequences[-1],))
        return sequences

    def alarm_high_water(self) -> int:
        return int(self._query("SELECT value FROM counters WHERE name = 'alarm_event_sequence'")[0][0])

    def oldest_alarm_sequence(self) -> int | None:
        row = self._query("SELECT MIN(sequence) FROM alarm_events")[0]
        return None if row[0] is None else int(row[0])

    def read_alarm_events(self, after_sequence: int, limit: int = 1000) -> list[StoredAlarmEvent]:
        """Events with sequence > after_sequence, oldest first. OUT_OF_RANGE (reason CURSOR_EXPIRED)
        when events after the cursor have already been pruned by retention."""
        with self._lock:
            oldest = self.oldest_alarm_sequence()
            high = self.alarm_high_water()
            if after_sequence < high and (oldest is None or after_sequence + 1 < oldest):
                raise OutOfRange(
                    f"cursor {after_sequence} is older than the retained alarm log (oldest retained sequence: "
                    f"{oldest if oldest is not None else high + 1}); resubscribe without start_after_sequence or from a newer cursor",
                    reason="CURSOR_EXPIRED",
                    metadata={"oldest_sequence": str(oldest if oldest is not None else high + 1), "high_water_sequence": str(high)},
                )
            rows = self._conn.execute(
                "SELECT sequence, monitor_id, alarm_id, event_time, payload_json FROM alarm_events WHERE sequence > ? "
                "ORDER BY sequence LIMIT ?",
                (after_sequence, limit),
            ).fetchall()
        return [StoredAlarmEvent(r[0], r[1], r[2], _dt(r[3]), json.loads(r[4])) for r in rows]

    def prune_alarm_events(self, keep_last: int) -> int:
        """Keep the newest `keep_last` events; return how many were deleted."""
        with self._tx() as c:
            (high,) = c.execute("SELECT value FROM counters WHERE name = 'alarm_event_sequence'").fetchone()
            cur = c.execute("DELETE FROM alarm_events WHERE sequence <= ?", (high - keep_last,))
            return cur.rowcount

    def put_alarm_instance(self, monitor_id: str, alarm_id: str, state: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO alarm_instances (monitor_id, alarm_id, state_json) VALUES (?, ?, ?) "
                "ON CONFLICT (monitor_id, alarm_id) DO UPDATE SET state_json = excluded.state_json",
                (monitor_id, alarm_id, json.dumps(state)),
            )

    def list_alarm_instances(self, monitor_id: str | None = None) -> list[tuple[str, str, dict[str, Any]]]:
        if monitor_id is None:
            rows = self._query("SELECT monitor_id, alarm_id, state_json FROM alarm_instances ORDER BY monitor_id, alarm_id")
        else:
            rows = self._query("SELECT monitor_id, alarm_id, state_json FROM alarm_instances WHERE monitor_id = ? ORDER BY alarm_id", (monitor_id,))
        return [(r[0], r[1], json.loads(r[2])) for r in rows]

    # -- snapshots -----------------------------------------------------------------------------

    def put_snapshot(self, monitor_id: str, evaluate_time: datetime, payload: bytes, keep_last: int | None = None) -> int:
        """Store a snapshot and return its id (1, 2, ... per monitor); keep only the newest `keep_last`."""
        with self._tx() as c:
            (last,) = c.execute("SELECT COALESCE(MAX(snapshot_id), 0) FROM snapshots WHERE monitor_id = ?", (monitor_id,)).fetchone()
            snapshot_id = last + 1
            c.execute("INSERT INTO snapshots (monitor_id, snapshot_id, evaluate_time, payload) VALUES (?, ?, ?, ?)",
                      (monitor_id, snapshot_id, _ts(evaluate_time), sqlite3.Binary(payload)))
            if keep_last is not None:
                c.execute("DELETE FROM snapshots WHERE monitor_id = ? AND snapshot_id <= ?", (monitor_id, snapshot_id - keep_last))
        return snapshot_id

    def get_snapshot(self, monitor_id: str, snapshot_id: int | None = None, at_or_before: datetime | None = None) -> StoredSnapshot:
        """One snapshot by id, else the latest (at or before `at_or_before` when given)."""
        sql = "SELECT monitor_id, snapshot_id, evaluate_time, payload FROM snapshots WHERE monitor_id = ?"
        args: tuple = (monitor_id,)
        if snapshot_id is not None:
            sql += " AND snapshot_id = ?"
            args += (snapshot_id,)
        elif at_or_before is not None:
            sql += " AND evaluate_time <= ?"
            args += (_ts(at_or_before),)
        rows = self._query(sql + " ORDER BY snapshot_id DESC LIMIT 1", args)
        if not rows:
            what = f"{monitor_name(monitor_id)}/snapshots/{snapshot_id if snapshot_id is not None else 'latest'}"
            raise NotFound("snapshot", what)
        r = rows[0]
        return StoredSnapshot(r[0], r[1], _dt(r[2]), bytes(r[3]))

    def list_snapshots(self, monitor_id: str, *, before_id: int | None = None, limit: int = 50,
                       start_time: datetime | None = None, end_time: datetime | None = None) -> list[StoredSnapshot]:
        sql = "SELECT monitor_id, snapshot_id, evaluate_time, payload FROM snapshots WHERE monitor_id = ?"
        args: tuple = (monitor_id,)
        if before_id is not None:
            sql += " AND snapshot_id < ?"
            args += (before_id,)
        if start_time is not None:
            sql += " AND evaluate_time >= ?"
            args += (_ts(start_time),)
        if end_time is not None:
            sql += " AND evaluate_time < ?"
            args += (_ts(end_time),)
        rows = self._query(sql + " ORDER BY snapshot_id DESC LIMIT ?", args + (limit,))
        return [StoredSnapshot(r[0], r[1], _dt(r[2]), bytes(r[3])) for r in rows]

    # -- engine state (windows) ----------------------------------------------------------------

    def put_engine_state(self, monitor_id: str, baseline_id: str, blob: bytes, dedupe: dict[str, Any]) -> None:
        with self._tx() as c:
            c.execute(
                "INSERT INTO engine_states (monitor_id, baseline_id, saved_at, dedupe_json, blob) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT (monitor_id) DO UPDATE SET baseline_id = excluded.baseline_id, saved_at = excluded.saved_at, "
                "dedupe_json = excluded.dedupe_json, blob = excluded.blob",
                (monitor_id, baseline_id, _ts(utcnow()), json.dumps(dedupe), sqlite3.Binary(blob)),
            )

    def take_engine_state(self, monitor_id: str, baseline_id: str) -> tuple[bytes, dict[str, Any]] | None:
        """The saved state for this monitor and baseline, removed from the store (it is restored once;
        the next shutdown saves a fresh one). State saved against another baseline is discarded."""
        with self._tx() as c:
            row = c.execute("SELECT baseline_id, blob, dedupe_json FROM engine_states WHERE monitor_id = ?", (monitor_id,)).fetchone()
            c.execute("DELETE FROM engine_states WHERE monitor_id = ?", (monitor_id,))
        if row is None or row[0] != baseline_id:
            return None
        return bytes(row[1]), json.loads(row[2])

    # -- ingest dedupe -------------------------------------------------------------------------

    def last_producer_sequences(self, monitor_id: str) -> dict[str, int]:
        rows = self._query("SELECT producer_id, last_sequence FROM producer_sequences WHERE monitor_id = ?", (monitor_id,))
        return {r[0]: int(r[1]) for r in rows}

    def record_producer_sequences(self, monitor_id: str, sequences: dict[str, int]) -> None:
        now = _ts(utcnow())
        with self._tx() as c:
            c.executemany(
                "INSERT INTO producer_sequences (monitor_id, producer_id, last_sequence, update_time) VALUES (?, ?, ?, ?) "
                "ON CONFLICT (monitor_id, producer_id) DO UPDATE SET last_sequence = MAX(last_sequence, excluded.last_sequence), "
                "update_time = excluded.update_time",
                [(monitor_id, p, s, now) for p, s in sequences.items()],
            )


def _monitor_from_row(r: tuple) -> Monitor:
    return Monitor(
        monitor_id=r[0], spec=MonitorSpec.from_dict(json.loads(r[1])), create_time=_dt(r[2]), update_time=_dt(r[3]),
        etag=r[4], active_baseline_id=r[5],
    )


def _baseline_from_row(r: tuple) -> StoredBaseline:
    return StoredBaseline(r[0], r[1], _dt(r[2]), r[3], int(r[4]), json.loads(r[5]), None if r[6] is None else bytes(r[6]))

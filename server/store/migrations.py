"""Versioned schema migrations: `migrations/NNNN_name.sql`, applied in order, each in its own
transaction, recorded in `schema_migrations`. A database newer than this code is refused."""

from __future__ import annotations

import re
import sqlite3
from datetime import datetime, timezone
from importlib import resources

MIGRATION_RE = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def available_migrations() -> list[tuple[int, str, str]]:
    """(version, file name, sql) for every bundled migration, sorted by version."""
    found = []
    for entry in resources.files("driftd.server.store").joinpath("migrations").iterdir():
        m = MIGRATION_RE.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text()))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migration versions must be 1..n without gaps, found {versions}")
    return found


def current_version(conn: sqlite3.Connection) -> int:
    conn.execute("CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)")
    row = conn.execute("SELECT MAX(version) FROM schema_migrations").fetchone()
    return int(row[0] or 0)


def migrate(conn: sqlite3.Connection) -> list[int]:
    """Apply pending migrations; return the versions applied."""
    have = current_version(conn)
    bundled = available_migrations()
    latest = bundled[-1][0] if bundled else 0
    if have > latest:
        raise RuntimeError(f"database schema version {have} is newer than this driftd ({latest}); upgrade driftd")
    applied = []
    for version, name, sql in bundled:
        if version <= have:
            continue
        # executescript commits first; run the migration and its record in one explicit transaction.
        conn.executescript(
            "BEGIN;\n" + sql + "\n"
            f"INSERT INTO schema_migrations (version, name, applied_at) VALUES ({version}, '{name}', "
            f"'{datetime.now(timezone.utc).isoformat()}');\nCOMMIT;"
        )
        applied.append(version)
    return applied

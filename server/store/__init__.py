"""SQLite store (WAL) with versioned migrations."""

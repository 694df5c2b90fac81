-- driftd store, version 3: each monitor's window state (and its ingest dedupe state), saved on
-- shutdown so a restart resumes windows with nothing lost or counted twice.

CREATE TABLE engine_states (
    monitor_id TEXT PRIMARY KEY REFERENCES monitors(monitor_id) ON DELETE CASCADE,
    baseline_id TEXT NOT NULL,
    saved_at TEXT NOT NULL,
    dedupe_json TEXT NOT NULL,
    blob BLOB NOT NULL
);

-- driftd store, version 1: monitors, immutable baselines, the alarm event log, snapshots.

CREATE TABLE monitors (
    monitor_id TEXT PRIMARY KEY,
    spec_json TEXT NOT NULL,
    active_baseline_id TEXT,
    create_time TEXT NOT NULL,
    update_time TEXT NOT NULL,
    etag TEXT NOT NULL
);

CREATE TABLE baselines (
    monitor_id TEXT NOT NULL REFERENCES monitors(monitor_id) ON DELETE CASCADE,
    baseline_id TEXT NOT NULL,
    create_time TEXT NOT NULL,
    data_hash TEXT NOT NULL,
    format_version INTEGER NOT NULL,
    metadata_json TEXT NOT NULL,
    blob BLOB NOT NULL,
    PRIMARY KEY (monitor_id, baseline_id)
);

-- Baselines are immutable: activating one never rewrites another, and a blob never changes.
CREATE TRIGGER baselines_immutable BEFORE UPDATE ON baselines
BEGIN
    SELECT RAISE(ABORT, 'baselines are immutable');
END;

-- Gap-free sequence numbers come from this counter, incremented in the same transaction as the
-- insert, so retention (deleting the oldest events) can never cause a sequence to be reused.
CREATE TABLE counters (
    name TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('alarm_event_sequence', 0);

CREATE TABLE alarm_events (
    sequence INTEGER PRIMARY KEY,
    monitor_id TEXT NOT NULL,
    alarm_id TEXT NOT NULL,
    event_time TEXT NOT NULL,
    payload_json TEXT NOT NULL
);
CREATE INDEX alarm_events_monitor ON alarm_events (monitor_id, sequence);

-- Current state of each alarm instance, so a restart resumes pending/firing alarms.
CREATE TABLE alarm_instances (
    monitor_id TEXT NOT NULL REFERENCES monitors(monitor_id) ON DELETE CASCADE,
    alarm_id TEXT NOT NULL,
    state_json TEXT NOT NULL,
    PRIMARY KEY (monitor_id, alarm_id)
);

CREATE TABLE snapshots (
    monitor_id TEXT NOT NULL REFERENCES monitors(monitor_id) ON DELETE CASCADE,
    snapshot_id INTEGER NOT NULL,
    evaluate_time TEXT NOT NULL,
    payload BLOB NOT NULL,
    PRIMARY KEY (monitor_id, snapshot_id)
);
CREATE INDEX snapshots_time ON snapshots (monitor_id, evaluate_time);

-- driftd store, version 2: the last applied sequence per (monitor, producer), so a batch retried
-- after a restart is still recognised as a duplicate and never counted twice.

CREATE TABLE producer_sequences (
    monitor_id TEXT NOT NULL REFERENCES monitors(monitor_id) ON DELETE CASCADE,
    producer_id TEXT NOT NULL,
    last_sequence INTEGER NOT NULL,
    update_time TEXT NOT NULL,
    PRIMARY KEY (monitor_id, producer_id)
);

/**
 * Versioned schema migrations, applied in order inside one transaction each. The applied
 * version is SQLite's `user_version`. Never edit a released migration: add the next one.
 */
export const MIGRATIONS: readonly string[] = [
  // 1: readings buffer, batches, receipts, MQTT redelivery guard, counters, key/value meta.
  `
  CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;

  -- AUTOINCREMENT: reading ids go into signed batches, so they are never reused, even after pruning.
  CREATE TABLE readings (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sensor TEXT NOT NULL,
    ts INTEGER NOT NULL,
    time_source INTEGER NOT NULL,
    value REAL NOT NULL,
    unit TEXT,
    seq INTEGER,
    source TEXT NOT NULL,
    received_at INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    batch_seq INTEGER
  );
  CREATE INDEX readings_unbatched ON readings(id) WHERE batch_seq IS NULL;
  CREATE INDEX readings_batch ON readings(batch_seq) WHERE batch_seq IS NOT NULL;
  -- A reading timed by the sensor itself is the same reading when sensor and time repeat.
  CREATE UNIQUE INDEX readings_sensor_time ON readings(sensor, ts) WHERE time_source = 0;

  CREATE TABLE batches (
    seq INTEGER PRIMARY KEY,
    hash BLOB NOT NULL,
    prev_hash BLOB NOT NULL,
    envelope BLOB NOT NULL,
    reading_count INTEGER NOT NULL,
    first_reading_id INTEGER NOT NULL,
    last_reading_id INTEGER NOT NULL,
    t0 INTEGER NOT NULL,
    t1 INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    state TEXT NOT NULL CHECK (state IN ('pending', 'delivered', 'rejected')),
    attempts INTEGER NOT NULL DEFAULT 0,
    delivered_at INTEGER,
    last_error TEXT
  );
  CREATE INDEX batches_pending ON batches(seq) WHERE state = 'pending';

  CREATE TABLE receipts (
    batch_seq INTEGER PRIMARY KEY,
    envelope BLOB NOT NULL,
    receiver_key BLOB NOT NULL,
    received_at INTEGER NOT NULL
  );

  -- Last message fingerprint per (source, MQTT packet id): a QoS 1 redelivery after a crash
  -- (committed, PUBACK lost) carries the same packet id and bytes and must not count twice.
  CREATE TABLE mqtt_redelivery (
    source TEXT NOT NULL,
    message_id INTEGER NOT NULL,
    fingerprint BLOB NOT NULL,
    PRIMARY KEY (source, message_id)
  ) WITHOUT ROWID;

  -- Persistent counters (rejections by reason, duplicates, ...), survive restarts.
  CREATE TABLE counters (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, label)
  ) WITHOUT ROWID;
  `,
  // 2: per serial device boot session and sensor, the highest sequence number committed, so a
  // reading the firmware resends after a gateway crash (committed, ACK lost) is not stored twice,
  // and the ACK sent after a reconnect can tell the firmware what it may drop
  // (firmware-bridge/PROTOCOL.md).
  `
  CREATE TABLE serial_progress (
    source TEXT NOT NULL,
    device TEXT NOT NULL,
    session INTEGER NOT NULL,
    sensor INTEGER NOT NULL,
    last_seq INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, device, session, sensor)
  ) WITHOUT ROWID;
  `,
  // 3: verdicts of the on-device models (agent/inference), batched and signed beside the readings
  // they judged (docs/wire-format.md §4.4), and each model runner's per-key state, so a restart
  // does not throw away a warm-up of hundreds of readings.
  `
  CREATE TABLE verdicts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    model_id TEXT NOT NULL,
    model_sha256 BLOB NOT NULL,
    window_start INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    reading_id INTEGER,
    score REAL,
    outputs TEXT NOT NULL,
    value REAL NOT NULL,
    threshold REAL NOT NULL,
    alert INTEGER NOT NULL,
    changed INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    batch_seq INTEGER
  );
  CREATE INDEX verdicts_unbatched ON verdicts(id) WHERE batch_seq IS NULL;
  CREATE INDEX verdicts_batch ON verdicts(batch_seq) WHERE batch_seq IS NOT NULL;
  CREATE INDEX verdicts_key_ts ON verdicts(key, ts);

  CREATE TABLE inference_state (
    binding TEXT NOT NULL,
    key TEXT NOT NULL,
    model_sha256 BLOB NOT NULL,
    state TEXT NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (binding, key)
  ) WITHOUT ROWID;
  `,
  // 4 (disk budget): readings dropped under the store budget and not yet reported upstream, per
  // sensor. The next batch cut carries them in its `drops` field and clears them in the same
  // transaction (docs/wire-format.md §4), so every drop reaches the network exactly once.
  `
  CREATE TABLE drops_unreported (
    sensor TEXT PRIMARY KEY,
    count INTEGER NOT NULL
  ) WITHOUT ROWID;

  -- The last sequence number committed per (source, sensor) for sensors that send one (MQTT
  -- "seq"): a jump counts the missing readings in counters (seq_gaps), e.g. messages a broker
  -- dropped for a consumer that fell behind (mosquitto max_queued_messages).
  CREATE TABLE sensor_seq (
    source TEXT NOT NULL,
    sensor TEXT NOT NULL,
    last_seq INTEGER NOT NULL,
    PRIMARY KEY (source, sensor)
  ) WITHOUT ROWID;
  `,
  // 5 (wire format v3): events the agent reports upstream (docs/wire-format.md §12.5): clock steps,
  // lost broker sessions, relearned baselines, quarantines... Carried by the next batch cut, like
  // verdicts; `batch_seq` is set in the same transaction that records the batch.
  `
  CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT NOT NULL,
    detail TEXT,
    boot INTEGER NOT NULL,
    batch_seq INTEGER
  );
  CREATE INDEX events_unbatched ON events(id) WHERE batch_seq IS NULL;

  -- Data-quality flags of a reading and flags of a verdict (§12.3): annotations, never edits.
  ALTER TABLE readings ADD COLUMN flags INTEGER;
  ALTER TABLE verdicts ADD COLUMN flags INTEGER;
  `,
  // (house) source-neutral resend guard and stream cursors: the store keeps what a source asks it
  // to (a message key and fingerprint; a position per named stream), not MQTT or serial types.
  // Rows of the MQTT redelivery guard and the serial progress carry over, keyed as the sources
  // now name them (packet id as text; "device/session/sensor").
  `
  CREATE TABLE source_resend_guard (
    source TEXT NOT NULL,
    message_key TEXT NOT NULL,
    fingerprint BLOB NOT NULL,
    PRIMARY KEY (source, message_key)
  ) WITHOUT ROWID;
  INSERT INTO source_resend_guard (source, message_key, fingerprint)
    SELECT source, CAST(message_id AS TEXT), fingerprint FROM mqtt_redelivery;
  DROP TABLE mqtt_redelivery;

  CREATE TABLE source_cursors (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    position INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (source, stream)
  ) WITHOUT ROWID;
  INSERT INTO source_cursors (source, stream, position, updated_at)
    SELECT source, device || '/' || session || '/' || sensor, last_seq, updated_at FROM serial_progress;
  DROP TABLE serial_progress;
  `,
  // 7 (models relearn): operator requests that series start a fresh baseline, written by
  // `edge-agent models relearn` whether or not the agent runs; the inference stage applies
  // pending ones (at start and about every second) and sets done_at with how many series matched.
  `
  CREATE TABLE relearn_requests (
    id INTEGER PRIMARY KEY,
    selector TEXT NOT NULL CHECK (selector IN ('sensor', 'asset', 'all')),
    target TEXT NOT NULL,
    requested_at INTEGER NOT NULL,
    done_at INTEGER,
    matched INTEGER
  );
  CREATE INDEX relearn_pending ON relearn_requests(id) WHERE done_at IS NULL;
  `,
  // 8 (issue 20, budgets that hold): when each resend guard row was last written, so the guard is
  // pruned by age and size (store/redelivery-guard.ts) instead of growing to one row per MQTT
  // packet id (65,535 rows, 3.45 MB per source, measured).
  `
  ALTER TABLE source_resend_guard ADD COLUMN seen_at INTEGER NOT NULL DEFAULT 0;
  CREATE INDEX source_resend_guard_seen ON source_resend_guard(source, seen_at);
  `,
  // 9 (issue 14, guarding the edge): quarantines (active and the last released ones), maintenance
  // windows, and operator requests (`edge-agent quarantine release`, `maintenance start|stop`)
  // that the running agent's guard stage applies about every second, or at its next start.
  // Bounded: store/guard-store.ts keeps at most GUARD_ROWS_MAX rows in each.
  `
  CREATE TABLE guard_quarantine (
    key TEXT PRIMARY KEY,
    reason TEXT NOT NULL,
    since INTEGER NOT NULL,
    last_abnormal INTEGER NOT NULL,
    kept INTEGER NOT NULL DEFAULT 0,
    dropped INTEGER NOT NULL DEFAULT 0,
    released_at INTEGER,
    released_by TEXT
  ) WITHOUT ROWID;
  CREATE TABLE guard_maintenance (
    target TEXT PRIMARY KEY,
    since INTEGER NOT NULL,
    until INTEGER,
    by TEXT NOT NULL
  ) WITHOUT ROWID;
  CREATE TABLE guard_requests (
    id INTEGER PRIMARY KEY,
    action TEXT NOT NULL CHECK (action IN ('quarantine_release', 'maintenance_start', 'maintenance_stop')),
    target TEXT NOT NULL,
    until INTEGER,
    requested_at INTEGER NOT NULL,
    done_at INTEGER,
    result TEXT
  );
  CREATE INDEX guard_requests_pending ON guard_requests(id) WHERE done_at IS NULL;
  `,
  // 10 (issue 15 item 5, sensor-signed readings): a sensor's attestation of a run of its readings
  // (firmware-bridge/PROTOCOL.md §3.9), checked against the committed readings and carried by the
  // batch that holds them (wire-format.md §12.7 att); run_key (source/device/session/sensor/first-last)
  // makes a resent ATTEST a duplicate. attest_wait: per sensor stream, the first committed reading
  // still waiting for its attestation, and until when the batcher holds it back for it.
  `
  CREATE TABLE attestations (
    id INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    run_key TEXT NOT NULL UNIQUE,
    sensor_key BLOB NOT NULL,
    msg BLOB NOT NULL,
    sig BLOB NOT NULL,
    reading_ids TEXT NOT NULL,
    first_reading_id INTEGER NOT NULL,
    last_reading_id INTEGER NOT NULL,
    received_at INTEGER NOT NULL,
    batch_seq INTEGER
  );
  CREATE INDEX attestations_unbatched ON attestations(first_reading_id) WHERE batch_seq IS NULL;
  CREATE INDEX attestations_batch ON attestations(batch_seq) WHERE batch_seq IS NOT NULL;
  CREATE INDEX readings_source_seq ON readings(source, seq) WHERE batch_seq IS NULL AND seq IS NOT NULL;

  CREATE TABLE attest_wait (
    source TEXT NOT NULL,
    stream TEXT NOT NULL,
    first_id INTEGER NOT NULL,
    until INTEGER NOT NULL,
    PRIMARY KEY (source, stream)
  ) WITHOUT ROWID;
  `,
  // 11 (issue 14, replay across a restart): the boot sessions the guard has seen per serial device
  // (the newest 16, JSON), so a session replayed after the agent restarted is still an old one.
  // Bounded: store/guard-store.ts keeps the GUARD_ROWS_MAX most recently seen devices.
  `
  CREATE TABLE guard_serial_sessions (
    device TEXT PRIMARY KEY,
    sessions TEXT NOT NULL,
    seen_at INTEGER NOT NULL
  ) WITHOUT ROWID;
  `,
  // 12 (issue 20, every growing table bounded): when each sensor's last seq was written, so the
  // table is held to its share of the budget, the longest silent sensors forgotten first
  // (store/keyed-tables.ts). Rows from before count as the oldest.
  `
  ALTER TABLE sensor_seq ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
  `,
  // 13 (issue 13, flash wear): the unique index of sensor-timed readings keyed by time first: readings of
  // many sensors arrive in time order, so a commit appends to the index's last leaf instead of
  // rewriting one leaf per sensor it carries (a SQLite page each in the WAL and at the checkpoint).
  // Same uniqueness; no query reads this index (the partial index serves INSERT OR IGNORE only).
  `
  DROP INDEX readings_sensor_time;
  CREATE UNIQUE INDEX readings_time_sensor ON readings(ts, sensor) WHERE time_source = 0;
  `,
  // 14 (issue 13, flash wear): a batch's signed envelope in a table of its own. SQLite rewrites a
  // whole row on UPDATE, overflow pages included, so marking a batch delivered (or counting a failed
  // attempt) rewrote its ~6 KB envelope: ~11 pages of 1 KiB per mark, measured; now the small row.
  `
  CREATE TABLE batch_envelopes (
    seq INTEGER PRIMARY KEY,
    envelope BLOB NOT NULL
  );
  INSERT INTO batch_envelopes (seq, envelope) SELECT seq, envelope FROM batches;
  ALTER TABLE batches DROP COLUMN envelope;
  `,
];

export const SCHEMA_VERSION = MIGRATIONS.length;

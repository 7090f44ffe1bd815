import Database from 'better-sqlite3';
import { AgentError } from '../errors.js';

export type ReceiverDb = Database.Database;

/** The receiver's own schema, versioned by `user_version` like the agent's store. Never edit a released entry. */
const MIGRATIONS: readonly string[] = [
  // 1: devices, their accepted batches (with the receipt sent), distinct readings, counters.
  `
  CREATE TABLE devices (
    device TEXT PRIMARY KEY,
    public_key BLOB NOT NULL,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL
  ) WITHOUT ROWID;

  CREATE TABLE batches (
    device TEXT NOT NULL REFERENCES devices(device),
    seq INTEGER NOT NULL,
    hash BLOB NOT NULL,
    prev BLOB NOT NULL,
    envelope BLOB NOT NULL,
    receipt BLOB NOT NULL,
    received_at INTEGER NOT NULL,
    reading_count INTEGER NOT NULL,
    t0 INTEGER NOT NULL,
    t1 INTEGER NOT NULL,
    boot INTEGER NOT NULL,
    sync INTEGER NOT NULL,
    PRIMARY KEY (device, seq)
  );

  -- Keyed by the device's reading id: a reading re-sent in another batch is stored once.
  CREATE TABLE readings (
    device TEXT NOT NULL,
    id INTEGER NOT NULL,
    sensor TEXT NOT NULL,
    ts INTEGER NOT NULL,
    time_quality INTEGER NOT NULL,
    value REAL NOT NULL,
    unit TEXT,
    seq INTEGER,
    source TEXT NOT NULL,
    boot INTEGER NOT NULL,
    batch_seq INTEGER NOT NULL,
    PRIMARY KEY (device, id)
  ) WITHOUT ROWID;

  CREATE TABLE counters (
    name TEXT NOT NULL,
    label TEXT NOT NULL,
    value INTEGER NOT NULL,
    PRIMARY KEY (name, label)
  ) WITHOUT ROWID;
  `,
  // 2: model verdicts (wire-format.md §4.4), keyed like readings by the device's own id.
  `
  CREATE TABLE verdicts (
    device TEXT NOT NULL,
    id INTEGER NOT NULL,
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
    batch_seq INTEGER NOT NULL,
    PRIMARY KEY (device, id)
  ) WITHOUT ROWID;
  CREATE INDEX verdicts_alert_changes ON verdicts(device, id) WHERE changed = 1;
  `,
  // 3 (wire format v3, §12): events, reading and verdict flags, and whether a batch came sealed.
  `
  CREATE TABLE events (
    device TEXT NOT NULL,
    id INTEGER NOT NULL,
    ts INTEGER NOT NULL,
    kind TEXT NOT NULL,
    key TEXT,
    detail TEXT,
    batch_seq INTEGER NOT NULL,
    PRIMARY KEY (device, id)
  ) WITHOUT ROWID;
  ALTER TABLE readings ADD COLUMN flags INTEGER;
  ALTER TABLE verdicts ADD COLUMN flags INTEGER;
  ALTER TABLE batches ADD COLUMN version INTEGER NOT NULL DEFAULT 1;
  ALTER TABLE batches ADD COLUMN sealed INTEGER NOT NULL DEFAULT 0;
  `,
];

export const RECEIVER_SCHEMA_VERSION = MIGRATIONS.length;

/** Opens (creating if needed) the receiver database: WAL, synchronous=FULL (a receipt is only sent for a durable batch). */
export function openReceiverDatabase(path: string): ReceiverDb {
  let db: ReceiverDb;
  try {
    db = new Database(path);
    db.pragma('busy_timeout = 5000');
    db.pragma('journal_mode = WAL');
    db.pragma('synchronous = FULL');
    db.pragma('foreign_keys = ON');
  } catch (err) {
    throw new AgentError('STORE_CORRUPT', `cannot open receiver database ${path}: ${(err as Error).message}`, { cause: err });
  }
  const current = db.pragma('user_version', { simple: true }) as number;
  if (current > RECEIVER_SCHEMA_VERSION) {
    db.close();
    throw new AgentError(
      'STORE_NEWER_SCHEMA',
      `receiver database ${path} has schema version ${current}, newer than this receiver understands (${RECEIVER_SCHEMA_VERSION}); upgrade edge-agent or use another --data-dir`,
    );
  }
  for (let v = current; v < RECEIVER_SCHEMA_VERSION; v++) {
    db.transaction(() => {
      db.exec(MIGRATIONS[v]!);
      db.pragma(`user_version = ${v + 1}`);
    })();
  }
  return db;
}

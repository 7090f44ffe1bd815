import Database from 'better-sqlite3';
import { AgentError } from '../errors.js';
import type { AnyBatch } from '../identity/batch-any.js';
import { computeAvailability, type Availability } from './availability.js';
import { hex, type SignedBatch } from '../identity/batch-format.js';
import { batchCidText } from '../identity/cid.js';
import { decideChain } from './chain-decision.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { attestedReadingCount } from '../identity/sensor-attestation.js';
import { attestationStats } from './attestation-stats.js';

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

const REJECTION_FLUSH_MS = 1000;

export type ConflictReason = 'seq-conflict' | 'chain-broken';

export type IngestResult =
  | { kind: 'accepted'; device: string; receipt: Uint8Array; gapBefore: boolean }
  | { kind: 'duplicate'; device: string; receipt: Uint8Array }
  | { kind: 'conflict'; device: string; reason: ConflictReason; detail: string };

export interface ReceiverStats {
  devices: number;
  batches: number;
  readings: number;
  verdicts: number;
  alerts_raised: number;
  rejected: number;
  gaps: number;
  rejected_by_reason: Record<string, number>;
  /** Readings devices reported dropped under their disk budget; by "DEVICE SENSOR". */
  dropped: number;
  dropped_by_sensor: Record<string, number>;
  /** Readings a sensor attestation covers (§12.7), the rest, and batches refused for their attestations (`bad-attestation`, `unknown-sensor-key`). */
  attested_readings: number;
  unattested_readings: number;
  refused_attestations: number;
}

/** A verdict that raised or cleared an alert, as the receiver lists it. */
export interface AlertChange {
  verdict_id: number;
  batch_seq: number;
  key: string;
  model: string;
  model_sha256: string;
  state: 'raised' | 'cleared';
  window_start: number;
  ts: number;
  reading_id: number | null;
  score: number | null;
  value: number;
  threshold: number;
  outputs: Record<string, number>;
}

/** An event a device reported (wire-format.md §12.5), as the receiver lists it. */
export interface DeviceEvent {
  event_id: number;
  batch_seq: number;
  ts: number;
  kind: string;
  key: string | null;
  detail: Record<string, string | number | boolean> | null;
}

export interface DeviceBatch {
  seq: number;
  hash: string;
  /** The envelope's CID (wire-format.md §12.11). */
  cid: string;
  version: number;
  sealed: boolean;
  received_at: number;
  readings: number;
}

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);

function statements(db: ReceiverDb) {
  return {
    batch: db.prepare<[string, number], { hash: Buffer; prev: Buffer; receipt: Buffer }>(
      'SELECT hash, prev, receipt FROM batches WHERE device = ? AND seq = ?',
    ),
    upsertDevice: db.prepare(
      `INSERT INTO devices (device, public_key, first_seen, last_seen) VALUES (?, ?, ?, ?)
       ON CONFLICT (device) DO UPDATE SET last_seen = excluded.last_seen`,
    ),
    insertBatch: db.prepare(
      `INSERT INTO batches (device, seq, hash, prev, envelope, receipt, received_at, reading_count, t0, t1, boot, sync, version, sealed)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertReading: db.prepare(
      `INSERT OR IGNORE INTO readings (device, id, sensor, ts, time_quality, value, unit, seq, source, boot, batch_seq, flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertVerdict: db.prepare(
      `INSERT OR IGNORE INTO verdicts (device, id, key, model_id, model_sha256, window_start, ts, reading_id, score, outputs, value, threshold, alert, changed, batch_seq, flags)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    ),
    insertEvent: db.prepare('INSERT OR IGNORE INTO events (device, id, ts, kind, key, detail, batch_seq) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    heartbeats: db.prepare<[string, number, number], { ts: number; kind: 'agent.heartbeat' | 'agent.stop'; detail: string | null }>(
      "SELECT ts, kind, detail FROM events WHERE device = ? AND kind IN ('agent.heartbeat', 'agent.stop') AND ts BETWEEN ? AND ? ORDER BY ts",
    ),
    deviceEvents: db.prepare<[string, number, number], { event_id: number; batch_seq: number; ts: number; kind: string; key: string | null; detail: string | null }>(
      'SELECT id AS event_id, batch_seq, ts, kind, key, detail FROM events WHERE device = ? AND id > ? ORDER BY id LIMIT ?',
    ),
    alertChanges: db.prepare<[string], Record<string, unknown> & { model_sha256: Buffer; outputs: string; alert: number }>(
      `SELECT id AS verdict_id, batch_seq, key, model_id AS model, model_sha256, alert, window_start, ts, reading_id, score, value, threshold, outputs
       FROM verdicts WHERE device = ? AND changed = 1 ORDER BY id`,
    ),
    count: db.prepare(
      `INSERT INTO counters (name, label, value) VALUES (?, ?, 1)
       ON CONFLICT (name, label) DO UPDATE SET value = value + 1`,
    ),
    countBy: db.prepare(
      `INSERT INTO counters (name, label, value) VALUES (?, ?, ?)
       ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value`,
    ),
    counters: db.prepare<[string], { label: string; value: number }>('SELECT label, value FROM counters WHERE name = ? ORDER BY label'),
    totals: db.prepare<[], { devices: number; batches: number; readings: number; verdicts: number; alerts_raised: number }>(
      `SELECT (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM batches) AS batches,
              (SELECT count(*) FROM readings) AS readings, (SELECT count(*) FROM verdicts) AS verdicts,
              (SELECT count(*) FROM verdicts WHERE changed = 1 AND alert = 1) AS alerts_raised`,
    ),
    // seq starts at 1 and is unique per device, so the missing positions below the highest are max - count.
    gaps: db.prepare<[], { gaps: number }>(
      'SELECT coalesce(sum(top - held), 0) AS gaps FROM (SELECT max(seq) AS top, count(*) AS held FROM batches GROUP BY device)',
    ),
    device: db.prepare<[string], { device: string }>('SELECT device FROM devices WHERE device = ?'),
    deviceBatches: db.prepare<[string], { seq: number; hash: Buffer; envelope: Buffer; version: number; sealed: number; received_at: number; readings: number }>(
      'SELECT seq, hash, envelope, version, sealed, received_at, reading_count AS readings FROM batches WHERE device = ? ORDER BY seq',
    ),
    // The batch an element was first stored from (elements are stored once per device and id).
    readingBatch: db.prepare<[string, number], { envelope: Buffer }>(
      'SELECT b.envelope FROM readings x JOIN batches b ON b.device = x.device AND b.seq = x.batch_seq WHERE x.device = ? AND x.id = ?',
    ),
    verdictBatch: db.prepare<[string, number], { envelope: Buffer }>(
      'SELECT b.envelope FROM verdicts x JOIN batches b ON b.device = x.device AND b.seq = x.batch_seq WHERE x.device = ? AND x.id = ?',
    ),
    eventBatch: db.prepare<[string, number], { envelope: Buffer }>(
      'SELECT b.envelope FROM events x JOIN batches b ON b.device = x.device AND b.seq = x.batch_seq WHERE x.device = ? AND x.id = ?',
    ),
  };
}

export class ReceiverStore {
  private readonly q: ReturnType<typeof statements>;
  private readonly pendingRejections = new Map<string, number>();
  private flushTimer: NodeJS.Timeout | undefined;

  constructor(private readonly db: ReceiverDb) {
    this.q = statements(db);
  }

  /**
   * Checks a verified batch against what is held for its device (idempotency, chain links)
   * and stores it with its readings and receipt, all in one transaction.
   */
  ingest(batch: SignedBatch & Partial<Pick<AnyBatch, 'version' | 'events' | 'sealed' | 'v3'>>, receivedAt: number, makeReceipt: () => Uint8Array): IngestResult {
    const b = batch.body;
    const device = deviceIdFromPublicKey(b.dev);
    const run = this.db.transaction((): IngestResult => {
      const held = (seq: number) => (seq >= 1 ? this.q.batch.get(device, seq) : undefined);
      const decision = decideChain(batch, { before: held(b.seq - 1), same: held(b.seq), after: held(b.seq + 1) });
      if (decision.kind === 'duplicate') return { kind: 'duplicate', device, receipt: new Uint8Array(decision.receipt) };
      if (decision.kind === 'conflict') return { kind: 'conflict', device, reason: decision.reason, detail: decision.detail };
      const gapBefore = decision.gapBefore;
      const receipt = makeReceipt();
      this.q.upsertDevice.run(device, buf(b.dev), receivedAt, receivedAt);
      const version = batch.version ?? (b.fmt === 'edge-agent/batch/1' ? 1 : 2);
      this.q.insertBatch.run(device, b.seq, buf(batch.hash), buf(b.prev), buf(batch.envelope), buf(receipt), receivedAt, b.r.length, b.t0, b.t1, b.boot, b.sync ? 1 : 0, version, batch.sealed ? 1 : 0);
      // Version 3 adds flags (§12.3); `f` is absent on earlier versions' elements.
      for (const r of b.r as (typeof b.r[number] & { f?: number })[]) this.q.insertReading.run(device, r.i, r.s, r.t, r.q, r.v, r.u ?? null, r.n ?? null, r.src, r.b, b.seq, r.f ?? null);
      for (const v of (b.vd ?? []) as (NonNullable<typeof b.vd>[number] & { f?: number })[]) {
        const model = b.m![v.m]!;
        this.q.insertVerdict.run(device, v.i, v.k, model.id, buf(model.h), v.w, v.t, v.r ?? null, v.s ?? null, JSON.stringify(v.o), v.v, v.th, v.a ? 1 : 0, v.c ? 1 : 0, b.seq, v.f ?? null);
      }
      for (const e of batch.events ?? []) this.q.insertEvent.run(device, e.i, e.t, e.k, e.s ?? null, e.d ? JSON.stringify(e.d) : null, b.seq);
      // Readings the gateway dropped under its disk budget (wire-format.md §4), per device and sensor.
      for (const d of b.drops ?? []) this.q.countBy.run('dropped', `${device} ${d.s}`, d.n);
      const attested = attestedReadingCount(batch.v3?.data);
      if (attested > 0) this.q.countBy.run('attested', 'readings', attested);
      return { kind: 'accepted', device, receipt, gapBefore };
    });
    return run.immediate();
  }

  /**
   * Counted in memory and written at most once a second (and at stats and close): a durable write
   * per refused request would let any client make the receiver fsync as fast as it can send.
   */
  countRejection(reason: string): void {
    this.pendingRejections.set(reason, (this.pendingRejections.get(reason) ?? 0) + 1);
    this.flushTimer ??= setTimeout(() => {
      try {
        this.flushRejections();
      } catch {
        // Kept pending: stats() and close() retry the write and throw to a caller that reports it (HTTP 500, the log).
      }
    }, REJECTION_FLUSH_MS).unref();
  }

  private flushRejections(): void {
    if (this.flushTimer) clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    if (this.pendingRejections.size === 0 || !this.db.open) return;
    const pending = [...this.pendingRejections];
    this.db.transaction(() => {
      for (const [reason, n] of pending) this.q.countBy.run('rejected', reason, n);
    })();
    this.pendingRejections.clear();
  }

  stats(): ReceiverStats {
    this.flushRejections();
    const totals = this.q.totals.get()!;
    const byReason: Record<string, number> = {};
    let rejected = 0;
    for (const c of this.q.counters.all('rejected')) {
      byReason[c.label] = c.value;
      rejected += c.value;
    }
    const droppedBySensor: Record<string, number> = {};
    let dropped = 0;
    for (const c of this.q.counters.all('dropped')) {
      droppedBySensor[c.label] = c.value;
      dropped += c.value;
    }
    const attested = this.q.counters.all('attested').reduce((n, c) => n + c.value, 0);
    return { ...totals, rejected, gaps: this.q.gaps.get()!.gaps, rejected_by_reason: byReason, dropped, dropped_by_sensor: droppedBySensor, ...attestationStats(totals.readings, attested, byReason) };
  }

  /** The batches held for a device, or undefined when the device is unknown. */
  deviceBatches(device: string): DeviceBatch[] | undefined {
    if (!this.q.device.get(device)) return undefined;
    return this.q.deviceBatches.all(device).map((r) => ({
      seq: r.seq,
      hash: hex(r.hash),
      cid: batchCidText(r.envelope),
      version: r.version,
      sealed: r.sealed === 1,
      received_at: r.received_at,
      readings: r.readings,
    }));
  }

  /** The envelope of the batch holding a device's reading, verdict or event `id`; undefined when none is held. */
  elementEnvelope(device: string, kind: 'reading' | 'verdict' | 'event', id: number): Uint8Array | undefined {
    const q = kind === 'reading' ? this.q.readingBatch : kind === 'verdict' ? this.q.verdictBatch : this.q.eventBatch;
    const row = q.get(device, id);
    return row ? new Uint8Array(row.envelope) : undefined;
  }

  /** Verdicts of a device that raised or cleared an alert, oldest first; undefined for an unknown device. */
  alertChanges(device: string): AlertChange[] | undefined {
    if (!this.q.device.get(device)) return undefined;
    return this.q.alertChanges.all(device).map(({ model_sha256, outputs, alert, ...rest }) => ({
      ...(rest as Omit<AlertChange, 'model_sha256' | 'outputs' | 'state'>),
      model_sha256: hex(model_sha256),
      state: alert === 1 ? 'raised' : 'cleared',
      outputs: JSON.parse(outputs) as Record<string, number>,
    }));
  }

  /** Events of a device after event id `after`, oldest first (at most `limit`); undefined for an unknown device. */
  deviceEvents(device: string, after = 0, limit = 1000): DeviceEvent[] | undefined {
    if (!this.q.device.get(device)) return undefined;
    return this.q.deviceEvents.all(device, after, limit).map((e) => ({ ...e, detail: e.detail ? (JSON.parse(e.detail) as DeviceEvent['detail']) : null }));
  }

  /** Availability over [from, to] from the device's signed heartbeats (receiver/availability.ts); undefined for an unknown device. */
  availability(device: string, from: number | undefined, to: number): Availability | undefined {
    if (!this.q.device.get(device)) return undefined;
    // The heartbeat just before `from` (up to a day) says whether the device was up at `from`.
    const marks = this.q.heartbeats.all(device, (from ?? 0) - 86_400_000, to).map((m) => {
      const d = m.detail ? (JSON.parse(m.detail) as Record<string, unknown>) : {};
      return { ts: m.ts, kind: m.kind, ...(typeof d.interval_s === 'number' ? { intervalS: d.interval_s } : {}), ...(typeof d.boot === 'number' ? { boot: d.boot } : {}) };
    });
    const start = from ?? marks.find((m) => m.kind === 'agent.heartbeat')?.ts ?? to;
    return computeAvailability(marks, start, to);
  }

  close(): void {
    this.flushRejections();
    if (this.db.open) this.db.close();
  }
}

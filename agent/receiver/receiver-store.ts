import type { AnyBatch } from '../identity/batch-any.js';
import { computeAvailability, type Availability } from './availability.js';
import { hex, type SignedBatch } from '../identity/batch-format.js';
import { batchCidText } from '../identity/cid.js';
import { decideChain } from './chain-decision.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { attestedReadingCount } from '../identity/sensor-attestation.js';
import { attestationStats } from './attestation-stats.js';
import type { ReceiverDb } from './receiver-schema.js';
import type { AlertChange, DeviceBatch, DeviceEvent, IngestResult, ReceiverStats } from './receiver-types.js';

const REJECTION_FLUSH_MS = 1000;

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

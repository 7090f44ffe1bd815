import pg from 'pg';
import { hex } from '../../identity/batch-format.js';
import { batchCidText } from '../../identity/cid.js';
import type { IngestBatch } from '../backend.js';
import { deviceIdFromPublicKey } from '../../identity/device-id.js';
import { computeAvailability, type Availability } from '../availability.js';
import { decideChain, type HeldBatch } from '../chain-decision.js';
import type { AlertChange, DeviceBatch, DeviceEvent, IngestResult, ReceiverStats } from '../receiver-types.js';
import { attestationStats } from '../attestation-stats.js';
import { attestedReadingCount } from '../../identity/sensor-attestation.js';

export type Via = 'replica' | 'log';

/** What a device holds around one seq (chain-decision.ts). */
export type Neighbours = { before: HeldBatch | undefined; same: HeldBatch | undefined; after: HeldBatch | undefined };

/** Rounds of read-decide-store when other replicas keep changing the same device's neighbours. */
const MAX_ATTEMPTS = 10;

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const num = (v: string | number | null | undefined) => Number(v ?? 0);

/**
 * The fleet's query store in PostgreSQL. A batch is stored by one call that first upserts the
 * device row: the row lock it takes serialises all replicas working on that device, and under it
 * the neighbours the decision was made on are checked again, so two replicas can never both
 * accept conflicting batches (and UNIQUE (device, seq) is the last word should anything slip
 * past). SQL for the fleet backend lives here and in pg-schema.ts only.
 */
export class PgChainStore {
  constructor(private readonly pool: pg.Pool) {}

  /** What is held at seq - 1, seq and seq + 1 of a device, read without a lock: enough to decide, and to answer a replay. */
  async neighbours(device: string, seq: number): Promise<Neighbours> {
    const { rows } = await this.pool.query<{ seq: string; hash: Buffer; prev: Buffer; receipt: Buffer }>(
      `SELECT b.seq, b.hash, b.prev, r.receipt FROM batches b JOIN receipts r USING (device, seq)
       WHERE b.device = $1 AND b.seq BETWEEN $2 AND $3`,
      [device, seq - 1, seq + 1],
    );
    const at = (s: number): HeldBatch | undefined => {
      const r = rows.find((x) => num(x.seq) === s);
      return r && { hash: new Uint8Array(r.hash), prev: new Uint8Array(r.prev), receipt: new Uint8Array(r.receipt) };
    };
    return { before: at(seq - 1), same: at(seq), after: at(seq + 1) };
  }

  /**
   * Decides the chain (decideChain, the rules both backends share) for a verified batch already in
   * the replicated log, and stores it with its receipt. Optimistic: the decision is made on what
   * was read (`seen`, or a fresh read), and edge_store_batch stores only if, under the device's row
   * lock, the neighbours are still those; otherwise it reads and decides again. So two replicas can
   * never both accept conflicting batches, in one round trip per attempt.
   */
  async apply(batch: IngestBatch, receivedAt: number, via: Via, makeReceipt: () => Uint8Array, seen?: Neighbours): Promise<IngestResult> {
    const b = batch.body;
    const device = deviceIdFromPublicKey(b.dev);
    for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
      const held = attempt === 0 && seen ? seen : await this.neighbours(device, b.seq);
      const decision = decideChain(batch, held);
      if (decision.kind === 'duplicate') return { kind: 'duplicate', device, receipt: decision.receipt };
      if (decision.kind === 'conflict') return { kind: 'conflict', device, reason: decision.reason, detail: decision.detail };
      const receipt = makeReceipt();
      if (await this.storeIfUnchanged(device, batch, receivedAt, via, receipt, held)) {
        // After the batch's own transaction: a replica dying in between under-counts this statistic, never the data.
        const attested = attestedReadingCount(batch.v3?.data);
        if (attested > 0) await this.countBy(this.pool, 'attested', 'readings', attested);
        return { kind: 'accepted', device, receipt, gapBefore: decision.gapBefore };
      }
    }
    throw new Error(`device ${device} changed under ${MAX_ATTEMPTS} attempts to store seq ${b.seq}; another replica is writing it as fast`);
  }

  private async storeIfUnchanged(device: string, batch: IngestBatch, at: number, via: Via, receipt: Uint8Array, seen: Neighbours): Promise<boolean> {
    const b = batch.body;
    // Version 3 adds flags (§12.3); `f` is absent on earlier versions' elements.
    const readings = b.r as (typeof b.r[number] & { f?: number })[];
    const verdicts = ((b.vd ?? []) as (NonNullable<typeof b.vd>[number] & { f?: number })[]).map((v) => {
      const model = b.m![v.m]!;
      return { i: v.i, k: v.k, model: model.id, h: hex(model.h), w: v.w, t: v.t, r: v.r ?? null, s: v.s ?? null, o: v.o, v: v.v, th: v.th, a: v.a, c: v.c, f: v.f ?? null };
    });
    const { rows } = await this.pool.query<{ stored: boolean }>(
      `SELECT edge_store_batch($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
         $19::bigint[], $20::text[], $21::bigint[], $22::smallint[], $23::float8[], $24::text[], $25::bigint[], $26::text[], $27::bigint[], $28::integer[],
         $29::jsonb, $30::jsonb, $31::jsonb) AS stored`,
      [
        device, buf(b.dev), at, b.seq, seen.before ? buf(seen.before.hash) : null, seen.after ? buf(seen.after.hash) : null,
        buf(batch.hash), buf(b.prev), buf(batch.envelope), b.r.length, b.t0, b.t1, b.boot,
        b.sync, batch.version ?? (b.fmt === 'edge-agent/batch/1' ? 1 : 2), batch.sealed ?? false, buf(receipt), via,
        readings.map((r) => r.i),
        readings.map((r) => r.s),
        readings.map((r) => r.t),
        readings.map((r) => r.q),
        readings.map((r) => r.v),
        readings.map((r) => r.u ?? null),
        readings.map((r) => r.n ?? null),
        readings.map((r) => r.src),
        readings.map((r) => r.b),
        readings.map((r) => r.f ?? null),
        JSON.stringify(verdicts),
        JSON.stringify(batch.events ?? []),
        JSON.stringify(b.drops ?? []),
      ],
    );
    return rows[0]?.stored === true;
  }

  async countRejection(reason: string): Promise<void> {
    await this.countBy(this.pool, 'rejected', reason, 1);
  }

  private async countBy(q: pg.Pool, name: string, label: string, n: number): Promise<void> {
    await q.query(
      `INSERT INTO counters (name, label, value) VALUES ($1, $2, $3)
       ON CONFLICT (name, label) DO UPDATE SET value = counters.value + excluded.value`,
      [name, label, n],
    );
  }

  async stats(): Promise<ReceiverStats> {
    const totals = await this.pool.query<Record<string, string>>(
      `SELECT (SELECT count(*) FROM devices) AS devices, (SELECT count(*) FROM batches) AS batches,
              (SELECT count(*) FROM readings) AS readings, (SELECT count(*) FROM verdicts) AS verdicts,
              (SELECT count(*) FROM verdicts WHERE changed AND alert) AS alerts_raised,
              -- seq starts at 1 and is unique per device: the missing positions below the highest are max - count.
              (SELECT coalesce(sum(top - held), 0) FROM (SELECT max(seq) AS top, count(*) AS held FROM batches GROUP BY device) g) AS gaps`,
    );
    const t = totals.rows[0]!;
    const counters = await this.pool.query<{ name: string; label: string; value: string }>(
      "SELECT name, label, value FROM counters WHERE name IN ('rejected', 'dropped', 'attested') ORDER BY name, label",
    );
    const rejectedBy: Record<string, number> = {};
    const droppedBy: Record<string, number> = {};
    let rejected = 0;
    let dropped = 0;
    let attested = 0;
    for (const c of counters.rows) {
      if (c.name === 'attested') attested += num(c.value);
      else if (c.name === 'rejected') (rejectedBy[c.label] = num(c.value)), (rejected += num(c.value));
      else (droppedBy[c.label] = num(c.value)), (dropped += num(c.value));
    }
    return {
      devices: num(t.devices),
      batches: num(t.batches),
      readings: num(t.readings),
      verdicts: num(t.verdicts),
      alerts_raised: num(t.alerts_raised),
      rejected,
      gaps: num(t.gaps),
      rejected_by_reason: rejectedBy,
      dropped,
      dropped_by_sensor: droppedBy,
      ...attestationStats(num(t.readings), attested, rejectedBy),
    };
  }

  private async known(device: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM devices WHERE device = $1', [device])).rowCount === 1;
  }

  async deviceBatches(device: string): Promise<DeviceBatch[] | undefined> {
    if (!(await this.known(device))) return undefined;
    const { rows } = await this.pool.query<{ seq: string; hash: Buffer; envelope: Buffer; version: number; sealed: boolean; received_at: string; readings: number }>(
      'SELECT seq, hash, envelope, version, sealed, received_at, reading_count AS readings FROM batches WHERE device = $1 ORDER BY seq',
      [device],
    );
    return rows.map((r) => ({
      seq: num(r.seq),
      hash: hex(r.hash),
      cid: batchCidText(r.envelope),
      version: r.version,
      sealed: r.sealed,
      received_at: num(r.received_at),
      readings: r.readings,
    }));
  }


  async deviceEvents(device: string, after = 0, limit = 1000): Promise<DeviceEvent[] | undefined> {
    if (!(await this.known(device))) return undefined;
    const { rows } = await this.pool.query<{ event_id: string; batch_seq: string; ts: string; kind: string; key: string | null; detail: DeviceEvent['detail'] }>(
      'SELECT id AS event_id, batch_seq, ts, kind, key, detail FROM events WHERE device = $1 AND id > $2 ORDER BY id LIMIT $3',
      [device, after, limit],
    );
    return rows.map((e) => ({ event_id: num(e.event_id), batch_seq: num(e.batch_seq), ts: num(e.ts), kind: e.kind, key: e.key, detail: e.detail }));
  }

  /** The envelope of the batch holding a device's reading, verdict or event `id`; undefined when none is held. */
  async elementEnvelope(device: string, kind: 'reading' | 'verdict' | 'event', id: number): Promise<Uint8Array | undefined> {
    const table = kind === 'reading' ? 'readings' : kind === 'verdict' ? 'verdicts' : 'events';
    const { rows } = await this.pool.query<{ envelope: Buffer }>(
      `SELECT b.envelope FROM ${table} x JOIN batches b ON b.device = x.device AND b.seq = x.batch_seq WHERE x.device = $1 AND x.id = $2`,
      [device, id],
    );
    return rows[0] ? new Uint8Array(rows[0].envelope) : undefined;
  }

  async availability(device: string, from: number | undefined, to: number): Promise<Availability | undefined> {
    if (!(await this.known(device))) return undefined;
    // The heartbeat just before `from` (up to a day) says whether the device was up at `from`.
    const { rows } = await this.pool.query<{ ts: string; kind: 'agent.heartbeat' | 'agent.stop'; detail: Record<string, unknown> | null }>(
      "SELECT ts, kind, detail FROM events WHERE device = $1 AND kind IN ('agent.heartbeat', 'agent.stop') AND ts BETWEEN $2 AND $3 ORDER BY ts",
      [device, (from ?? 0) - 86_400_000, to],
    );
    const marks = rows.map((m) => {
      const d = m.detail ?? {};
      return { ts: num(m.ts), kind: m.kind, ...(typeof d.interval_s === 'number' ? { intervalS: d.interval_s } : {}), ...(typeof d.boot === 'number' ? { boot: d.boot } : {}) };
    });
    const start = from ?? marks.find((m) => m.kind === 'agent.heartbeat')?.ts ?? to;
    return computeAvailability(marks, start, to);
  }

  async alertChanges(device: string): Promise<AlertChange[] | undefined> {
    if (!(await this.known(device))) return undefined;
    const { rows } = await this.pool.query(
      `SELECT id AS verdict_id, batch_seq, key, model_id AS model, model_sha256, alert, window_start, ts, reading_id, score, value, threshold, outputs
       FROM verdicts WHERE device = $1 AND changed ORDER BY id`,
      [device],
    );
    return rows.map((r) => ({
      verdict_id: num(r.verdict_id),
      batch_seq: num(r.batch_seq),
      key: r.key,
      model: r.model,
      model_sha256: hex(r.model_sha256),
      state: r.alert ? 'raised' : 'cleared',
      window_start: num(r.window_start),
      ts: num(r.ts),
      reading_id: r.reading_id === null ? null : num(r.reading_id),
      score: r.score,
      value: r.value,
      threshold: r.threshold,
      outputs: r.outputs as Record<string, number>,
    }));
  }
}

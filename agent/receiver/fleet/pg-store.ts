import pg from 'pg';
import { hex } from '../../identity/batch-format.js';
import type { IngestBatch } from '../backend.js';
import { deviceIdFromPublicKey } from '../../identity/device-id.js';
import { decideChain, type HeldBatch } from '../chain-decision.js';
import type { AlertChange, DeviceBatch, DeviceEvent, IngestResult, ReceiverStats } from '../receiver-store.js';

export type Via = 'replica' | 'log';

/** What is held at one (device, seq), read without a lock: enough to answer a replay. */
export interface HeldAt {
  hash: Uint8Array;
  receipt: Uint8Array;
}

const buf = (b: Uint8Array) => Buffer.from(b.buffer, b.byteOffset, b.byteLength);
const num = (v: string | number | null | undefined) => Number(v ?? 0);

/**
 * The fleet's query store in PostgreSQL. Every chain decision happens in one transaction that
 * first upserts the device row: the row lock it takes serialises all replicas working on that
 * device, so two of them can never both accept conflicting batches (and UNIQUE (device, seq)
 * is the last word should anything slip past). SQL for the fleet backend lives here only.
 */
export class PgChainStore {
  constructor(private readonly pool: pg.Pool) {}

  /** The batch held at (device, seq), if any: replays are answered from here without touching the log. */
  async heldAt(device: string, seq: number): Promise<HeldAt | undefined> {
    const { rows } = await this.pool.query<{ hash: Buffer; receipt: Buffer }>(
      'SELECT b.hash, r.receipt FROM batches b JOIN receipts r USING (device, seq) WHERE b.device = $1 AND b.seq = $2',
      [device, seq],
    );
    const row = rows[0];
    return row ? { hash: new Uint8Array(row.hash), receipt: new Uint8Array(row.receipt) } : undefined;
  }

  /** Decides the chain for a verified batch already in the replicated log, and stores it with its receipt. */
  async apply(batch: IngestBatch, receivedAt: number, via: Via, makeReceipt: () => Uint8Array): Promise<IngestResult> {
    const b = batch.body;
    const device = deviceIdFromPublicKey(b.dev);
    const client = await this.pool.connect();
    // A connection that breaks while checked out (PostgreSQL restarting between two statements)
    // emits 'error' with no listener of the pool's: the next statement fails and is answered 503.
    let broken: Error | undefined;
    const onError = (err: Error) => (broken = err);
    client.on('error', onError);
    let open = false;
    try {
      await client.query('BEGIN');
      open = true;
      // Takes (or waits for) the device's row lock until COMMIT/ROLLBACK, then reads its neighbours.
      const { rows } = await client.query<{ held_seq: string; held_hash: Buffer; held_prev: Buffer; held_receipt: Buffer }>('SELECT * FROM edge_hold_device($1, $2, $3, $4)', [
        device,
        buf(b.dev),
        receivedAt,
        b.seq,
      ]);
      const held = new Map<number, HeldBatch>(rows.map((r) => [num(r.held_seq), { hash: r.held_hash, prev: r.held_prev, receipt: r.held_receipt }]));
      const decision = decideChain(batch, { before: held.get(b.seq - 1), same: held.get(b.seq), after: held.get(b.seq + 1) });
      if (decision.kind !== 'accept') {
        await client.query('ROLLBACK');
        open = false;
        if (decision.kind === 'duplicate') return { kind: 'duplicate', device, receipt: new Uint8Array(decision.receipt) };
        return { kind: 'conflict', device, reason: decision.reason, detail: decision.detail };
      }
      const receipt = makeReceipt();
      // Version 3 adds flags (§12.3); `f` is absent on earlier versions' elements.
      const readings = b.r as (typeof b.r[number] & { f?: number })[];
      // Batch, receipt and all readings in one statement (one round trip: under load each one
      // waits for a CPU); the foreign key from receipts is checked at the end of the statement.
      // A reading re-sent in another batch is stored once.
      await client.query(
        `WITH b AS (
           INSERT INTO batches (device, seq, hash, prev, envelope, received_at, reading_count, t0, t1, boot, sync, version, sealed)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) RETURNING device, seq),
         rc AS (INSERT INTO receipts (device, seq, receipt, signed_at, via) SELECT device, seq, $14, $6, $15 FROM b)
         INSERT INTO readings (device, id, sensor, ts, time_quality, value, unit, seq, source, boot, batch_seq, flags)
         SELECT $1, i, s, t, q, v, u, n, src, rb, $2, f
         FROM unnest($16::bigint[], $17::text[], $18::bigint[], $19::smallint[], $20::float8[], $21::text[], $22::bigint[], $23::text[], $24::bigint[], $25::integer[])
           AS x(i, s, t, q, v, u, n, src, rb, f)
         ON CONFLICT (device, id) DO NOTHING`,
        [
          device, b.seq, buf(batch.hash), buf(b.prev), buf(batch.envelope), receivedAt, b.r.length, b.t0, b.t1, b.boot, b.sync,
          batch.version ?? (b.fmt === 'edge-agent/batch/1' ? 1 : 2), batch.sealed ?? false, buf(receipt), via,
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
        ],
      );
      for (const v of (b.vd ?? []) as (NonNullable<typeof b.vd>[number] & { f?: number })[]) {
        const model = b.m![v.m]!;
        await client.query(
          `INSERT INTO verdicts (device, id, key, model_id, model_sha256, window_start, ts, reading_id, score, outputs, value, threshold, alert, changed, batch_seq, flags)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) ON CONFLICT (device, id) DO NOTHING`,
          [device, v.i, v.k, model.id, buf(model.h), v.w, v.t, v.r ?? null, v.s ?? null, JSON.stringify(v.o), v.v, v.th, v.a, v.c, b.seq, v.f ?? null],
        );
      }
      for (const e of batch.events ?? []) {
        await client.query(
          'INSERT INTO events (device, id, ts, kind, key, detail, batch_seq) VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (device, id) DO NOTHING',
          [device, e.i, e.t, e.k, e.s ?? null, e.d ? JSON.stringify(e.d) : null, b.seq],
        );
      }
      // Readings the gateway dropped under its disk budget (wire-format.md §4), per device and sensor.
      for (const d of b.drops ?? []) await this.countBy(client, 'dropped', `${device} ${d.s}`, d.n);
      await client.query('COMMIT');
      open = false;
      return { kind: 'accepted', device, receipt, gapBefore: decision.gapBefore };
    } catch (err) {
      // The ROLLBACK is best effort: on a broken connection the server has already rolled back.
      if (open && !broken) await client.query('ROLLBACK').catch(() => undefined);
      throw err;
    } finally {
      client.off('error', onError);
      client.release(broken ?? false);
    }
  }

  async countRejection(reason: string): Promise<void> {
    await this.countBy(this.pool, 'rejected', reason, 1);
  }

  private async countBy(q: pg.Pool | pg.PoolClient, name: string, label: string, n: number): Promise<void> {
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
      "SELECT name, label, value FROM counters WHERE name IN ('rejected', 'dropped') ORDER BY name, label",
    );
    const rejectedBy: Record<string, number> = {};
    const droppedBy: Record<string, number> = {};
    let rejected = 0;
    let dropped = 0;
    for (const c of counters.rows) {
      if (c.name === 'rejected') (rejectedBy[c.label] = num(c.value)), (rejected += num(c.value));
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
    };
  }

  private async known(device: string): Promise<boolean> {
    return (await this.pool.query('SELECT 1 FROM devices WHERE device = $1', [device])).rowCount === 1;
  }

  async deviceBatches(device: string): Promise<DeviceBatch[] | undefined> {
    if (!(await this.known(device))) return undefined;
    const { rows } = await this.pool.query<{ seq: string; hash: Buffer; received_at: string; readings: number }>(
      'SELECT seq, hash, received_at, reading_count AS readings FROM batches WHERE device = $1 ORDER BY seq',
      [device],
    );
    return rows.map((r) => ({ seq: num(r.seq), hash: hex(r.hash), received_at: num(r.received_at), readings: r.readings }));
  }

  async deviceEvents(device: string, after = 0, limit = 1000): Promise<DeviceEvent[] | undefined> {
    if (!(await this.known(device))) return undefined;
    const { rows } = await this.pool.query<{ event_id: string; batch_seq: string; ts: string; kind: string; key: string | null; detail: DeviceEvent['detail'] }>(
      'SELECT id AS event_id, batch_seq, ts, kind, key, detail FROM events WHERE device = $1 AND id > $2 ORDER BY id LIMIT $3',
      [device, after, limit],
    );
    return rows.map((e) => ({ event_id: num(e.event_id), batch_seq: num(e.batch_seq), ts: num(e.ts), kind: e.kind, key: e.key, detail: e.detail }));
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

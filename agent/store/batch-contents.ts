import type { BatchContentV3 } from '../identity/batch-v3.js';
import type { StoredEvent } from '../identity/event-format.js';
import type { Db } from './database.js';
import { BatchContents } from './audit-queries.js';
import { statement } from './statements.js';

/**
 * What proofs, data products and archives read from the agent's store: which batch holds an
 * element, the stored rows of one batch, a sensor's readings over a time range, and batch
 * envelopes one at a time (so an archive of a large store is streamed, not loaded).
 */

export type ElementKind = 'reading' | 'verdict' | 'event';
const TABLE: Record<ElementKind, string> = { reading: 'readings', verdict: 'verdicts', event: 'events' };

/** The batch seq holding element `id`: a number, null when it is not in a batch yet, undefined when the store has no such id. */
export function batchOfElement(db: Db, kind: ElementKind, id: number): number | null | undefined {
  const row = db.prepare(`SELECT batch_seq FROM ${TABLE[kind]} WHERE id = ?`).get(id) as { batch_seq: number | null } | undefined;
  return row ? row.batch_seq : undefined;
}

/** The stored readings, verdicts and events of batch `seq`, in id order (the order the batch signed them in). */
export function storedBatchContents(db: Db, seq: number): BatchContentV3 {
  const rows = new BatchContents(db);
  const readings = rows.readings(seq);
  const verdicts = rows.verdicts(seq);
  const events = (db.prepare('SELECT id, ts, kind, key, detail FROM events WHERE batch_seq = ? ORDER BY id').all(seq) as { id: number; ts: number; kind: string; key: string; detail: string | null }[]).map(
    (r): StoredEvent => ({ id: r.id, ts: r.ts, kind: r.kind, key: r.key, ...(r.detail ? { detail: JSON.parse(r.detail) as StoredEvent['detail'] } : {}) }),
  );
  return { readings, verdicts, events };
}

export interface SensorReadingRef {
  id: number;
  batchSeq: number | null;
}

/** Readings of `sensor` with `from` <= t <= `to`, in id order; at most `limit` + 1 so a caller can tell the limit was passed. */
export function sensorReadingsInRange(db: Db, sensor: string, from: number, to: number, limit: number): SensorReadingRef[] {
  return (
    db.prepare('SELECT id, batch_seq FROM readings WHERE sensor = ? AND ts BETWEEN ? AND ? ORDER BY id LIMIT ?').all(sensor, from, to, limit + 1) as { id: number; batch_seq: number | null }[]
  ).map((r) => ({ id: r.id, batchSeq: r.batch_seq }));
}

/** The oldest batch the store still holds (retention deletes delivered ones), or undefined for none. */
export function oldestHeldBatch(db: Db): { seq: number; t0: number } | undefined {
  return db.prepare('SELECT seq, t0 FROM batches ORDER BY seq LIMIT 1').get() as { seq: number; t0: number } | undefined;
}

/** Batch envelopes with seq in [from, to], in seq order, one row at a time. */
export function* batchEnvelopes(db: Db, from: number, to: number): Generator<{ seq: number; envelope: Uint8Array }> {
  for (const row of db.prepare('SELECT seq, envelope FROM batch_envelopes WHERE seq BETWEEN ? AND ? ORDER BY seq').iterate(from, to) as Iterable<{ seq: number; envelope: Buffer }>) {
    yield { seq: row.seq, envelope: new Uint8Array(row.envelope) };
  }
}

/** The seq range of the batches held, or undefined when there are none. */
export function heldBatchRange(db: Db): { first: number; last: number } | undefined {
  const row = db.prepare('SELECT min(seq) AS first, max(seq) AS last FROM batches').get() as { first: number | null; last: number | null };
  return row.first === null || row.last === null ? undefined : { first: row.first, last: row.last };
}

/** The newest batch with seq in [from, to] (default: any), for an archive's root and the status's CID. */
export function newestBatch(db: Db, from = 1, to = Number.MAX_SAFE_INTEGER): { seq: number; envelope: Uint8Array } | undefined {
  const row = db.prepare('SELECT seq, envelope FROM batch_envelopes WHERE seq BETWEEN ? AND ? ORDER BY seq DESC LIMIT 1').get(from, to) as { seq: number; envelope: Buffer } | undefined;
  return row ? { seq: row.seq, envelope: new Uint8Array(row.envelope) } : undefined;
}

/** Bytes of the signed envelopes waiting for the uplink (envelopes live in batch_envelopes, migration 14). */
export function pendingEnvelopeBytes(db: Db): number {
  return statement(db, "SELECT coalesce(sum(length(e.envelope)), 0) FROM batches b JOIN batch_envelopes e ON e.seq = b.seq WHERE b.state = 'pending'")
    .pluck()
    .get() as number;
}

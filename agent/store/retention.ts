import type { Db } from './database.js';
import { HELD, HELD_SUMMARIZED } from './held-readings.js';

export interface PruneResult {
  batches: number;
  readings: number;
}

/**
 * Deletes what the network has acknowledged more than `retainMs` ago: delivered batches
 * (row, envelope and receipt) and their readings and verdicts. Undelivered data is never touched here, and the
 * newest batch is always kept, because the next batch chains to its hash. Kept within the
 * window: recent readings still guard against MQTT redeliveries, and recent batches and
 * receipts can be re-verified and exported.
 *
 * `maxBatches` bounds one call to the oldest that many batches: on a full disk the transaction's
 * WAL frames must fit in the room the disk reserve gave back (a DELETE of every delivered batch at
 * once needed more than 1.6 MB there and failed, leaving nothing freed).
 */
export function pruneDelivered(db: Db, retainMs: number, now = Date.now(), maxBatches = Infinity): PruneResult {
  return db.transaction(() => {
    const cutoff = now - retainMs;
    const newest = (db.prepare('SELECT max(seq) FROM batches').pluck().get() as number | null) ?? 0;
    const limit = Number.isFinite(maxBatches) ? Math.max(0, Math.floor(maxBatches)) : -1;
    const doomed = `SELECT seq FROM batches WHERE state = 'delivered' AND delivered_at < ? AND seq < ? ORDER BY seq LIMIT ?`;
    const args = [cutoff, newest, limit] as const;
    const readings = db.prepare(`DELETE FROM readings WHERE batch_seq IN (${doomed})`).run(...args).changes;
    db.prepare(`DELETE FROM verdicts WHERE batch_seq IN (${doomed})`).run(...args);
    // Delivered events go with their batch: heartbeats alone would add ~100,000 rows a year.
    db.prepare(`DELETE FROM events WHERE batch_seq IN (${doomed})`).run(...args);
    db.prepare(`DELETE FROM receipts WHERE batch_seq IN (${doomed})`).run(...args);
    db.prepare(`DELETE FROM attestations WHERE batch_seq IN (${doomed})`).run(...args);
    db.prepare(`DELETE FROM batch_envelopes WHERE seq IN (${doomed})`).run(...args);
    const batches = db.prepare(`DELETE FROM batches WHERE seq IN (${doomed})`).run(...args).changes;
    // Summary mode: kept readings already in a signed summary go after the same time (store/held-readings.ts).
    // Bounded like the batches on a full disk (1,000 rows per batch allowed), for the same WAL reason.
    const kept = db
      .prepare(`DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE batch_seq = ${HELD_SUMMARIZED} AND received_at < ? ORDER BY id LIMIT ?)`)
      .run(cutoff, limit < 0 ? -1 : limit * 1000).changes;
    if (kept > 0) db.prepare(`DELETE FROM verdicts WHERE batch_seq = ${HELD} AND NOT EXISTS (SELECT 1 FROM readings WHERE readings.id = verdicts.reading_id)`).run();
    return { batches, readings: readings + kept };
  })();
}

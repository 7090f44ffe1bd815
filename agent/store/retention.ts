import type { Db } from './database.js';
import { HELD, HELD_SUMMARIZED } from './held-readings.js';

export interface PruneResult {
  batches: number;
  readings: number;
}

/**
 * Deletes what the network has acknowledged more than `retainMs` ago: delivered batches
 * (envelope and receipt) and their readings and verdicts. Undelivered data is never touched here, and the
 * newest batch is always kept, because the next batch chains to its hash. Kept within the
 * window: recent readings still guard against MQTT redeliveries, and recent batches and
 * receipts can be re-verified and exported.
 */
export function pruneDelivered(db: Db, retainMs: number, now = Date.now()): PruneResult {
  return db.transaction(() => {
    const cutoff = now - retainMs;
    const newest = (db.prepare('SELECT max(seq) FROM batches').pluck().get() as number | null) ?? 0;
    const doomed = `SELECT seq FROM batches WHERE state = 'delivered' AND delivered_at < ? AND seq < ?`;
    const readings = db.prepare(`DELETE FROM readings WHERE batch_seq IN (${doomed})`).run(cutoff, newest).changes;
    db.prepare(`DELETE FROM verdicts WHERE batch_seq IN (${doomed})`).run(cutoff, newest);
    // Delivered events go with their batch: heartbeats alone would add ~100,000 rows a year.
    db.prepare(`DELETE FROM events WHERE batch_seq IN (${doomed})`).run(cutoff, newest);
    db.prepare(`DELETE FROM receipts WHERE batch_seq IN (${doomed})`).run(cutoff, newest);
    const batches = db.prepare(`DELETE FROM batches WHERE seq IN (${doomed})`).run(cutoff, newest).changes;
    // Summary mode: kept readings already in a signed summary go after the same time (store/held-readings.ts).
    const kept = db.prepare(`DELETE FROM readings WHERE batch_seq = ${HELD_SUMMARIZED} AND received_at < ?`).run(cutoff).changes;
    if (kept > 0) db.prepare(`DELETE FROM verdicts WHERE batch_seq = ${HELD} AND NOT EXISTS (SELECT 1 FROM readings WHERE readings.id = verdicts.reading_id)`).run();
    return { batches, readings: readings + kept };
  })();
}

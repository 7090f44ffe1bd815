import type { Db } from './database.js';

/**
 * The MQTT redelivery guard (table source_resend_guard) only has to recognise a message the broker
 * sends again after a crash: one that was committed but whose PUBACK was lost. Only messages in
 * flight can be redelivered [MQTT-4.4.0-1], at most `max_inflight` (MQTT 5 Receive Maximum), so
 * the newest `guardRowsFor(max_inflight)` rows per source are all it needs; rows older than the
 * broker's session expiry can never be redelivered at all.
 */
export function guardRowsFor(maxInflight: number): number {
  // 4 x, not the 2 x the spec alone would need: the broker also resends what we did acknowledge
  // when those PUBACKs were lost with the connection. Measured through a relay at load 25: about
  // 2,200 redeliveries per cut with max_inflight 1000, and a 2,000-row guard let 998 of them be
  // stored a second time (test/integration/mqtt-redelivery-budget.test.ts).
  return Math.max(4096, 4 * maxInflight);
}

export class RedeliveryGuardPruner {
  private readonly q;

  constructor(
    db: Db,
    /** Per MQTT source id: rows kept and the session expiry (ms). */
    private readonly sources: ReadonlyMap<string, { rows: number; maxAgeMs: number }>,
  ) {
    this.q = {
      nthNewest: db.prepare<[string, number], number>('SELECT seen_at FROM source_resend_guard WHERE source = ? ORDER BY seen_at DESC LIMIT 1 OFFSET ?').pluck(),
      deleteOlder: db.prepare('DELETE FROM source_resend_guard WHERE source = ? AND seen_at < ?'),
      // Rows of sources no longer configured are never looked up again.
      deleteOthers: db.prepare(`DELETE FROM source_resend_guard WHERE source NOT IN (SELECT value FROM json_each(?))`),
    };
  }

  /** Deletes what the guard no longer needs; returns the rows deleted. */
  prune(now = Date.now()): number {
    let deleted = this.q.deleteOthers.run(JSON.stringify([...this.sources.keys()])).changes;
    for (const [source, { rows, maxAgeMs }] of this.sources) {
      const nth = this.q.nthNewest.get(source, rows - 1);
      const cutoff = Math.max(nth ?? -Infinity, now - maxAgeMs);
      if (Number.isFinite(cutoff)) deleted += this.q.deleteOlder.run(source, cutoff).changes;
    }
    return deleted;
  }
}

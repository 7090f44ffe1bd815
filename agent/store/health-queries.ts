import type { Db } from './database.js';

export interface PendingBatchHead {
  seq: number;
  created_at: number;
  attempts: number;
  last_error: string | null;
}

export interface PendingSummary {
  n: number;
  /** Highest pending seq, null when none is pending. */
  last: number | null;
  oldest: number | null;
}

/**
 * The named queries the health side (health/agent-state.ts, backlog-drain.ts, observability.ts)
 * reads through. They only read: health observes the stages and never writes their tables.
 */
export class HealthQueries {
  private readonly stmts;

  constructor(db: Db) {
    this.stmts = {
      oldestPending: db.prepare("SELECT seq, created_at, attempts, last_error FROM batches WHERE state = 'pending' ORDER BY seq LIMIT 1"),
      // Both walk the partial index readings_unbatched: the first row only, and at most `?` rows.
      oldestUnbatched: db.prepare('SELECT received_at FROM readings WHERE batch_seq IS NULL ORDER BY id LIMIT 1').pluck(),
      countUnbatchedUpTo: db.prepare('SELECT count(*) FROM (SELECT 1 FROM readings WHERE batch_seq IS NULL LIMIT ?)').pluck(),
      pendingSummary: db.prepare("SELECT count(*) AS n, max(seq) AS last, min(created_at) AS oldest FROM batches WHERE state = 'pending'"),
      deliveredBySensor: db.prepare('SELECT source, sensor, count(*) AS n FROM readings WHERE batch_seq = ? GROUP BY source, sensor'),
    };
  }

  oldestPending(): PendingBatchHead | undefined {
    return this.stmts.oldestPending.get() as PendingBatchHead | undefined;
  }

  oldestUnbatchedReceivedAt(): number | null {
    return (this.stmts.oldestUnbatched.get() as number | undefined) ?? null;
  }

  /** Unbatched readings counted up to `limit` (a health probe must not count millions). */
  countUnbatchedUpTo(limit: number): number {
    return this.stmts.countUnbatchedUpTo.get(limit) as number;
  }

  pendingSummary(): PendingSummary {
    return this.stmts.pendingSummary.get() as PendingSummary;
  }

  /** Readings per source and sensor carried by batch `seq`. */
  deliveredBySensor(seq: number): { source: string; sensor: string; n: number }[] {
    return this.stmts.deliveredBySensor.all(seq) as { source: string; sensor: string; n: number }[];
  }
}

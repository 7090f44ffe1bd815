import type { Db } from './database.js';

/** Counter rows kept (about 64 bytes each): names by label (per sensor, per reason) stay bounded. */
export const COUNTER_ROWS_MAX = 4096;
/** Label the smallest counters are folded into when there are more rows than that. */
export const OTHER_LABEL = '(other)';

/**
 * Folds the smallest counters into one `(other)` row per counter name when the table has more
 * than `maxRows` rows (a flood of new sensor ids or rejection reasons): totals stay exact, the
 * per-label detail of the rarest labels goes.
 */
export function capCounters(db: Db, maxRows = COUNTER_ROWS_MAX): number {
  const rows = db.prepare('SELECT count(*) FROM counters').pluck().get() as number;
  if (rows <= maxRows) return 0;
  // A tenth below the cap, so the next check does not fold again at once.
  const excess = rows - Math.floor(maxRows * 0.9);
  return db.transaction(() => {
    const doomed = db
      .prepare(`SELECT name, label, value FROM counters WHERE label != ? ORDER BY value ASC LIMIT ?`)
      .all(OTHER_LABEL, excess) as { name: string; label: string; value: number }[];
    const add = db.prepare('INSERT INTO counters (name, label, value) VALUES (?, ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value');
    const del = db.prepare('DELETE FROM counters WHERE name = ? AND label = ?');
    const sums = new Map<string, number>();
    for (const r of doomed) {
      sums.set(r.name, (sums.get(r.name) ?? 0) + r.value);
      del.run(r.name, r.label);
    }
    for (const [name, value] of sums) add.run(name, OTHER_LABEL, value);
    return doomed.length;
  })();
}

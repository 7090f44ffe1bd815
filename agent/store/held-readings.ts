import type { Db } from './database.js';
import { EventStore } from './event-store.js';

/**
 * Uplink summary mode (agent/adaptive/README.md): readings kept in the store but not uploaded in
 * full. `batch_seq` says where a reading is, so the batch cut (`batch_seq IS NULL`) never sees a
 * kept one and nothing else of the store changes:
 *   NULL  waiting for a batch;  > 0  in that batch;
 *   0     kept, not yet in a summary;  -1  kept, in a signed `report.summary` event.
 * A plain verdict (no alert change) of a kept reading is kept too (batch_seq 0, store/verdict-store.ts);
 * alert changes always go up.
 * Batch seqs start at 1, so 0 and -1 are never a batch.
 */
export const HELD = 0;
export const HELD_SUMMARIZED = -1;

/** A window closes once the sensor's data has moved past it, or nothing reached it for this long. */
export const SUMMARY_GRACE_MS = 5000;
/** Summaries recorded per pass at most (a batch carries 1,000 events, docs/wire-format.md §12.9). */
const MAX_SUMMARIES_PER_PASS = 500;

interface WindowRow {
  sensor: string;
  w: number;
  n: number;
  lo: number;
  hi: number;
  mean: number;
  t_first: number;
  t_last: number;
  id_first: number;
  id_last: number;
  last_rx: number;
}

export interface SummaryPass {
  summaries: number;
  readings: number;
}

export interface Release {
  released: number;
  event: number;
}

/** Every SQL statement of summary mode. Windows are `ts / interval` in integer division (better-sqlite3 binds numbers as REAL, hence the CASTs). */
export class HeldReadings {
  private readonly windows;
  private readonly mark;
  private readonly releaseRange;
  private readonly releaseVerdicts;
  private readonly counts;
  private readonly events: EventStore;

  constructor(
    private readonly db: Db,
    bootCounter = 0,
  ) {
    this.events = new EventStore(db, bootCounter);
    this.windows = db.prepare<[number, number], WindowRow>(
      `SELECT sensor, ts / CAST(? AS INTEGER) AS w, count(*) AS n, min(value) AS lo, max(value) AS hi, avg(value) AS mean, min(ts) AS t_first, max(ts) AS t_last,
              min(id) AS id_first, max(id) AS id_last, max(received_at) AS last_rx
       FROM readings WHERE batch_seq = ${HELD} GROUP BY sensor, w ORDER BY sensor, w LIMIT ?`,
    );
    this.mark = db.prepare(`UPDATE readings SET batch_seq = ${HELD_SUMMARIZED} WHERE batch_seq = ${HELD} AND sensor = ? AND ts / CAST(? AS INTEGER) = ? AND id <= ?`);
    this.releaseVerdicts = db.prepare(
      `UPDATE verdicts SET batch_seq = NULL WHERE batch_seq = ${HELD} AND reading_id IN (SELECT id FROM readings WHERE batch_seq IN (${HELD}, ${HELD_SUMMARIZED}) AND sensor = ? AND ts BETWEEN ? AND ?)`,
    );
    this.releaseRange = db.prepare(`UPDATE readings SET batch_seq = NULL WHERE batch_seq IN (${HELD}, ${HELD_SUMMARIZED}) AND sensor = ? AND ts BETWEEN ? AND ?`);
    this.counts = db.prepare(`SELECT count(*) FILTER (WHERE batch_seq = ${HELD}) AS open, count(*) FILTER (WHERE batch_seq = ${HELD_SUMMARIZED}) AS summarized FROM readings WHERE batch_seq IN (${HELD}, ${HELD_SUMMARIZED})`);
  }

  /**
   * Closes the windows of `intervalMs` (by reading time, per sensor) that are done, each into one
   * `report.summary` event (count, min, max, mean, first and last time and id), and marks their
   * readings summarized: one transaction, so a reading is summarized exactly once.
   */
  summarize(intervalMs: number, now = Date.now()): SummaryPass {
    return this.db.transaction((): SummaryPass => {
      const rows = this.windows.all(intervalMs, MAX_SUMMARIES_PER_PASS + 1);
      const newest = new Map<string, number>();
      for (const r of rows) newest.set(r.sensor, Math.max(newest.get(r.sensor) ?? -Infinity, r.w));
      let summaries = 0;
      let readings = 0;
      for (const r of rows.slice(0, MAX_SUMMARIES_PER_PASS)) {
        const done = r.w < newest.get(r.sensor)! || r.last_rx <= now - SUMMARY_GRACE_MS;
        if (!done) continue;
        this.events.record({
          kind: 'report.summary',
          key: r.sensor,
          ts: now,
          detail: {
            interval_ms: intervalMs,
            window_start: r.w * intervalMs,
            count: r.n,
            min: r.lo,
            max: r.hi,
            // avg() can land an ulp outside [min, max] (0.1 three times); §12.5 requires min <= mean <= max.
            mean: Math.min(r.hi, Math.max(r.lo, r.mean)),
            first_t: r.t_first,
            last_t: r.t_last,
            first_id: r.id_first,
            last_id: r.id_last,
          },
        });
        this.mark.run(r.sensor, intervalMs, r.w, r.id_last);
        summaries++;
        readings += r.n;
      }
      return { summaries, readings };
    })();
  }

  /**
   * Hands kept readings of `sensor` with `from` <= t <= `to` back to the batch cut, with a
   * `report.full_rate` event saying why (an alert, or an upload asked by an operator or by the
 * network: `request` names the receiver's request, §12.15).
   */
  release(sensor: string, from: number, to: number, why: { reason: 'alert' | 'upload'; by?: string; request?: string }, now = Date.now()): Release {
    return this.db.transaction((): Release => {
      this.releaseVerdicts.run(sensor, from, to); // their plain verdicts go with them
      const released = this.releaseRange.run(sensor, from, to).changes;
      const event = this.events.record({ kind: 'report.full_rate', key: sensor, ts: now, detail: { reason: why.reason, from_t: from, to_t: Math.min(to, Number.MAX_SAFE_INTEGER), released, ...(why.by ? { by: why.by.slice(0, 256) } : {}), ...(why.request ? { request: why.request.slice(0, 256) } : {}) } });
      return { released, event };
    })();
  }

  stats(): { open: number; summarized: number } {
    return this.counts.get() as { open: number; summarized: number };
  }
}

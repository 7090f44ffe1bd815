import type { Db } from './database.js';

/** A verdict as the status page and `edge-agent status` show it. */
export interface VerdictSummaryRow {
  key: string;
  model_id: string;
  ts: number;
  score: number | null;
  threshold: number | null;
  alert: number;
}

export interface RecentReadingRow {
  sensor: string;
  ts: number;
  value: number;
  unit: string | null;
}

export interface ActiveAlertRow {
  series: string;
  model: string;
  since: number;
}

/**
 * The named queries behind `edge-agent status` and the status page (health/status-api.ts): every
 * statement they run, so the SQL stays in store/ and a schema change is made in one folder.
 */
export class StatusQueries {
  private readonly stmts;

  constructor(db: Db) {
    // Prepared on first use: a statement naming a table the store lacks would throw when prepared.
    const lazy = (sql: string, pluck = false) => {
      let stmt: ReturnType<Db['prepare']> | undefined;
      return () => (stmt ??= pluck ? db.prepare(sql).pluck() : db.prepare(sql));
    };
    this.stmts = {
      tableExists: lazy("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"),
      readingsTotal: lazy('SELECT count(*) FROM readings', true),
      receipts: lazy('SELECT count(*) FROM receipts', true),
      dropsNotYetReported: lazy('SELECT coalesce(sum(count), 0) FROM drops_unreported', true),
      verdictsStored: lazy('SELECT count(*) FROM verdicts', true),
      verdictsUnbatched: lazy('SELECT count(*) FROM verdicts WHERE batch_seq IS NULL', true),
      alertsActive: lazy(`SELECT v.key AS series, v.model_id AS model, v.ts AS since FROM verdicts v
         JOIN (SELECT key, model_id, max(id) AS id FROM verdicts WHERE changed = 1 GROUP BY key, model_id) last ON last.id = v.id
         WHERE v.alert = 1 ORDER BY v.key`),
      // Read by primary key from the end of each table: a scrape costs the same whatever the store holds.
      recentReadings: lazy('SELECT sensor, ts, value, unit FROM readings ORDER BY id DESC LIMIT ?'),
      recentVerdicts: lazy('SELECT key, model_id, ts, score, threshold, alert FROM verdicts ORDER BY id DESC LIMIT ?'),
      recentAlertChanges: lazy(`SELECT key, model_id, ts, score, threshold, alert FROM verdicts
         WHERE id > (SELECT coalesce(max(id), 0) FROM verdicts) - ? AND changed = 1 ORDER BY id DESC LIMIT ?`),
    };
  }

  /** Whether a table exists: a store migrated by an older agent may lack newer ones. */
  hasTable(name: string): boolean {
    return this.stmts.tableExists().get(name) !== undefined;
  }

  readingsTotal(): number {
    return (this.stmts.readingsTotal().get() as number | undefined) ?? 0;
  }

  receipts(): number {
    return this.stmts.receipts().get() as number;
  }

  /** Readings dropped under the disk budget that no batch has carried upstream yet (wire-format.md §4.5). */
  dropsNotYetReported(): number {
    return (this.stmts.dropsNotYetReported().get() as number | undefined) ?? 0;
  }

  verdictCounts(): { stored: number; buffered: number } {
    return { stored: this.stmts.verdictsStored().get() as number, buffered: this.stmts.verdictsUnbatched().get() as number };
  }

  /** Series whose latest alert change raised an alert, per model. */
  alertsActive(): ActiveAlertRow[] {
    return this.stmts.alertsActive().all() as ActiveAlertRow[];
  }

  /** The newest `limit` readings, newest first. */
  recentReadings(limit: number): RecentReadingRow[] {
    return this.stmts.recentReadings().all(limit) as RecentReadingRow[];
  }

  /** The newest `limit` verdicts, newest first. */
  recentVerdicts(limit: number): VerdictSummaryRow[] {
    return this.stmts.recentVerdicts().all(limit) as VerdictSummaryRow[];
  }

  /** Alert raises and clears among the newest `scan` verdicts, at most `limit`, newest first. */
  recentAlertChanges(scan: number, limit: number): VerdictSummaryRow[] {
    return this.stmts.recentAlertChanges().all(scan, limit) as VerdictSummaryRow[];
  }
}

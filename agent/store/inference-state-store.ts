import type { Db } from './database.js';

/** One model series' saved state (windows, calibration), JSON as the runner exported it. */
export interface InferenceStateRow {
  binding: string;
  key: string;
  model_sha256: Buffer;
  state: string;
}

export interface StateRow {
  binding: string;
  key: string;
  modelSha256: Buffer;
  state: string;
}

/** Planning bytes of a saved state beyond its text: the 32-byte model hash, the key columns' row overhead. */
const STATE_ROW_OVERHEAD_BYTES = 64;
const stateBytesSql = `length(binding) + length(key) + length(state) + ${STATE_ROW_OVERHEAD_BYTES}`;

export interface StateSaved {
  saved: number;
  /** Series whose state did not fit the share: they warm up again after a restart. */
  skipped: number;
  /** Rows of series no longer in memory (another model, a removed binding) deleted to stay in the share. */
  stale: number;
}

/**
 * The inference stage's saved per-series state, so a restart does not warm every model up again.
 * Held to a byte share of the store budget (`inferenceStateShare`, store/budget-shares.ts): the
 * state is a cache, so what does not fit is not saved (the first series in the order given are
 * kept: the runner's oldest), and rows of series no longer saved go first.
 */
export class InferenceStateStore {
  private readonly put;
  private readonly all;
  private readonly forget;
  private readonly total;
  private readonly staleRows;
  private readonly saveAll;

  constructor(db: Db) {
    this.put = db.prepare('INSERT OR REPLACE INTO inference_state (binding, key, model_sha256, state, updated_at) VALUES (?, ?, ?, ?, ?)');
    this.all = db.prepare('SELECT binding, key, model_sha256, state FROM inference_state');
    this.forget = db.prepare('DELETE FROM inference_state WHERE binding = ? AND key = ?');
    this.total = db.prepare(`SELECT coalesce(sum(${stateBytesSql}), 0) FROM inference_state`).pluck();
    this.staleRows = db.prepare<[number], { binding: string; key: string; b: number }>(
      `SELECT binding, key, ${stateBytesSql} AS b FROM inference_state WHERE updated_at < ? ORDER BY updated_at, binding, key`,
    );
    this.saveAll = db.transaction((rows: readonly StateRow[], now: number, shareBytes: number): StateSaved => {
      let used = 0;
      let saved = 0;
      for (const r of rows) {
        const bytes = r.binding.length + r.key.length + r.state.length + STATE_ROW_OVERHEAD_BYTES;
        if (used + bytes > shareBytes) {
          // An older saved state of this series would be stale after this save: it goes too.
          this.forget.run(r.binding, r.key);
          continue;
        }
        this.put.run(r.binding, r.key, r.modelSha256, r.state, now);
        used += bytes;
        saved++;
      }
      let left = this.total.get() as number;
      let stale = 0;
      if (left > shareBytes) {
        for (const s of this.staleRows.all(now)) {
          if (left <= shareBytes) break;
          this.forget.run(s.binding, s.key);
          left -= s.b;
          stale++;
        }
      }
      return { saved, skipped: rows.length - saved, stale };
    });
  }

  /** Saves the rows that fit `shareBytes` in one transaction (all of them without a budget). */
  save(rows: readonly StateRow[], now = Date.now(), shareBytes = Infinity): StateSaved {
    return this.saveAll(rows, now, shareBytes);
  }

  load(): InferenceStateRow[] {
    return this.all.all() as InferenceStateRow[];
  }

  /** Bytes the saved state is counted at (planning figures above). */
  bytes(): number {
    return this.total.get() as number;
  }
}

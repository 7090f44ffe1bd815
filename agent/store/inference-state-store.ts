import type { Db } from './database.js';

/** One model series' saved state (windows, calibration), JSON as the runner exported it. */
export interface InferenceStateRow {
  binding: string;
  key: string;
  model_sha256: Buffer;
  state: string;
}

/** The inference stage's saved per-series state, so a restart does not warm every model up again. */
export class InferenceStateStore {
  private readonly put;
  private readonly all;
  private readonly saveAll;

  constructor(db: Db) {
    this.put = db.prepare('INSERT OR REPLACE INTO inference_state (binding, key, model_sha256, state, updated_at) VALUES (?, ?, ?, ?, ?)');
    this.all = db.prepare('SELECT binding, key, model_sha256, state FROM inference_state');
    this.saveAll = db.transaction((rows: readonly { binding: string; key: string; modelSha256: Buffer; state: string }[], now: number) => {
      for (const r of rows) this.put.run(r.binding, r.key, r.modelSha256, r.state, now);
    });
  }

  /** Saves all rows in one transaction. */
  save(rows: readonly { binding: string; key: string; modelSha256: Buffer; state: string }[], now = Date.now()): void {
    this.saveAll(rows, now);
  }

  load(): InferenceStateRow[] {
    return this.all.all() as InferenceStateRow[];
  }
}

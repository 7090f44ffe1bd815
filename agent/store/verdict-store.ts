import type { StoredVerdict, Verdict } from '../identity/verdict-format.js';
import type { Db } from './database.js';
import { HELD, HELD_SUMMARIZED } from './held-readings.js';


export interface VerdictRow {
  id: number;
  key: string;
  model_id: string;
  model_sha256: Buffer;
  window_start: number;
  ts: number;
  reading_id: number | null;
  score: number | null;
  outputs: string;
  value: number;
  threshold: number;
  alert: number;
  changed: number;
  flags?: number | null;
}

export const VERDICT_COLUMNS = 'id, key, model_id, model_sha256, window_start, ts, reading_id, score, outputs, value, threshold, alert, changed, flags';

export function rowToVerdict(row: VerdictRow): StoredVerdict {
  const v: StoredVerdict = {
    id: row.id,
    key: row.key,
    modelId: row.model_id,
    modelSha256: new Uint8Array(row.model_sha256),
    windowStart: row.window_start,
    ts: row.ts,
    outputs: JSON.parse(row.outputs) as Record<string, number>,
    value: row.value,
    threshold: row.threshold,
    alert: row.alert === 1,
    changed: row.changed === 1,
  };
  if (row.reading_id !== null) v.readingId = row.reading_id;
  if (row.score !== null) v.score = row.score;
  if (row.flags) v.flags = row.flags;
  return v;
}

/** Verdicts of the on-device models, committed in groups and batched like readings. */
export class VerdictStore {
  private readonly insert;
  private readonly insertAll;

  constructor(
    db: Db,
    private readonly bootCounter: number,
  ) {
    this.insert = db.prepare(
      // Summary mode (store/held-readings.ts): a plain verdict (no alert change) of a kept reading is kept with it.
      `INSERT INTO verdicts (key, model_id, model_sha256, window_start, ts, reading_id, score, outputs, value, threshold, alert, changed, boot, created_at, flags, batch_seq)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
               CASE WHEN ? = 0 AND EXISTS (SELECT 1 FROM readings WHERE id = ? AND batch_seq IN (${HELD}, ${HELD_SUMMARIZED})) THEN ${HELD} END)`,
    );
    this.insertAll = db.transaction((verdicts: readonly Verdict[], now: number) =>
      verdicts.map(
        (v) =>
          Number(
            this.insert.run(
              v.key,
              v.modelId,
              v.modelSha256,
              v.windowStart,
              v.ts,
              v.readingId ?? null,
              v.score ?? null,
              JSON.stringify(v.outputs),
              v.value,
              v.threshold,
              v.alert ? 1 : 0,
              v.changed ? 1 : 0,
              this.bootCounter,
              now,
              v.flags || null,
              v.changed ? 1 : 0,
              v.readingId ?? null,
            ).lastInsertRowid,
          ),
      ),
    );
  }

  /** Commits the verdicts in one transaction; returns their ids in order. */
  commit(verdicts: readonly Verdict[], now = Date.now()): number[] {
    return verdicts.length === 0 ? [] : this.insertAll(verdicts, now);
  }
}

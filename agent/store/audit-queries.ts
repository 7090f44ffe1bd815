import type { StoredVerdict } from '../identity/verdict-format.js';
import type { StoredReading } from '../types.js';
import type { Db } from './database.js';
import { rowToReading } from './reading-store.js';
import { rowToVerdict, VERDICT_COLUMNS, type VerdictRow } from './verdict-store.js';

/** What the chain audit (identity/chain-verify.ts) reads: the readings and verdicts still stored for a batch. */
export class BatchContents {
  private readonly readingsOf;
  private readonly verdictsOf;

  constructor(db: Db) {
    this.readingsOf = db.prepare('SELECT id, sensor, ts, time_source, value, unit, seq, source, boot, flags FROM readings WHERE batch_seq = ? ORDER BY id');
    this.verdictsOf = db.prepare(`SELECT ${VERDICT_COLUMNS} FROM verdicts WHERE batch_seq = ? ORDER BY id`);
  }

  readings(seq: number): StoredReading[] {
    return (this.readingsOf.all(seq) as Parameters<typeof rowToReading>[0][]).map(rowToReading);
  }

  verdicts(seq: number): StoredVerdict[] {
    return (this.verdictsOf.all(seq) as VerdictRow[]).map(rowToVerdict);
  }
}

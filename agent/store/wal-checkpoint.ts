import type { Logger } from '../log.js';
import { isStoreFull, RepeatedLog } from '../util/repeated-log.js';
import type { Db } from './database.js';
import type { DiskReserve } from './disk-reserve.js';

/** How a wal_checkpoint(TRUNCATE) ended: done, busy (readers held on), full (no room to grow the file) or failed. */
export type CheckpointOutcome = 'done' | 'busy' | 'full' | 'failed';

/** The store budget's WAL checkpoints; a failure that repeats (a full disk fails every one) is logged once with a count. */
export class WalCheckpoints {
  private readonly failed: RepeatedLog;

  constructor(
    private readonly db: Db,
    private readonly reserve: DiskReserve,
    log: Logger,
  ) {
    this.failed = new RepeatedLog(log, 'warn', 'WAL checkpoint failed');
  }

  /** wal_checkpoint(TRUNCATE), waiting at most `waitMs` for readers (a `status` beside the agent). */
  truncate(waitMs: number): CheckpointOutcome {
    this.db.pragma(`busy_timeout = ${waitMs}`);
    try {
      const [r] = this.db.pragma('wal_checkpoint(TRUNCATE)') as { busy: number }[];
      this.failed.recovered();
      return r?.busy === 0 ? 'done' : 'busy';
    } catch (err) {
      this.failed.report(err);
      return isStoreFull(err) ? 'full' : 'failed';
    } finally {
      this.db.pragma('busy_timeout = 5000');
    }
  }

  passive(): void {
    try {
      this.db.pragma('wal_checkpoint(PASSIVE)');
    } catch (err) {
      this.failed.report(err);
    }
  }

  /**
   * A checkpoint on a full disk: when it needs room to grow the database file, what is left of the
   * ballast (the checkpoint slice, store/budget.ts makeRoom) gives it. Without that a WAL whose
   * pages lie past the file's end could never be checkpointed again, and the store never written.
   */
  onFullDisk(): void {
    if (this.truncate(2000) !== 'full') return;
    if (this.reserve.release(Infinity, 'disk full, WAL checkpoint') > 0) this.truncate(2000);
  }
}

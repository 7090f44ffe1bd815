import type { Logger } from '../log.js';
import type { StoreBudget } from '../store/budget.js';
import type { Db } from '../store/database.js';
import { pruneDelivered } from '../store/retention.js';
import { RepeatedLog } from '../util/repeated-log.js';

const PRUNE_INTERVAL_MS = 10 * 60_000;
const BUDGET_INTERVAL_MS = 5000;
/** A batch cut or a delivery record that finds the disk full makes room at most this often. */
const MAKE_ROOM_MIN_INTERVAL_MS = 1000;

/**
 * The store's upkeep while the agent runs: retention of delivered data and the disk budget
 * (store/budget.ts), at start, on timers and after every commit, and room made when a write finds
 * the disk full. A failure of the timed upkeep or of room made outside a commit is logged once until
 * it recovers (RepeatedLog), not thrown: it is retried, and ingest goes on meanwhile. Only a commit's
 * own SQLITE_FULL handler throws, so the writer rejects what it could not store (nothing acknowledged).
 */
export class StoreUpkeep {
  private pruneTimer: NodeJS.Timeout | undefined;
  private budgetTimer: NodeJS.Timeout | undefined;
  private lastRoomMadeAt = -Infinity;
  private readonly budgetFailed: RepeatedLog;
  private readonly pruneFailed: RepeatedLog;
  private readonly makeRoomFailed: RepeatedLog;
  private readonly storeFull: RepeatedLog;

  constructor(
    private readonly db: Db,
    readonly budget: StoreBudget,
    /** store.retain_delivered_hours in ms, read at every prune (a config reload may change it). */
    private readonly retainDeliveredMs: () => number,
    private readonly log: Logger,
    budgetLog: Logger,
  ) {
    this.budgetFailed = new RepeatedLog(log, 'error', 'enforcing the store budget failed; will retry');
    this.pruneFailed = new RepeatedLog(log, 'warn', 'pruning delivered data failed; will retry');
    this.makeRoomFailed = new RepeatedLog(log, 'error', 'disk full: could not free space in the store yet (no disk reserve left?); will retry');
    this.storeFull = new RepeatedLog(budgetLog, 'error', 'store is full (SQLITE_FULL): dropping the oldest unbatched readings, then retrying the commit');
  }

  /** Retention and the budget now, then on their timers. */
  start(): void {
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.enforceBudget();
    this.budgetTimer = setInterval(() => this.enforceBudget(), BUDGET_INTERVAL_MS);
  }

  stop(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.budgetTimer) clearInterval(this.budgetTimer);
  }

  enforceBudget(): void {
    try {
      this.budget.enforce();
      this.budgetFailed.recovered();
    } catch (err) {
      this.budgetFailed.report(err);
    }
  }

  /** A reading commit failed with SQLITE_FULL: room is made before the writer tries it once more (it throws if it cannot). */
  commitFoundStoreFull(): void {
    this.storeFull.report({ code: 'SQLITE_FULL', message: 'database or disk is full' }, { ...this.budget.usage() });
    this.budget.makeRoom();
  }

  /** A batch cut or a delivery record found the disk full (no commit failed yet): make room the same way, at most once a second. */
  writeFoundStoreFull(): void {
    if (performance.now() - this.lastRoomMadeAt < MAKE_ROOM_MIN_INTERVAL_MS) return;
    this.lastRoomMadeAt = performance.now();
    try {
      this.budget.makeRoom();
    } catch (err) {
      this.makeRoomFailed.report(err);
    }
  }

  private prune(): void {
    try {
      const r = pruneDelivered(this.db, this.retainDeliveredMs());
      if (r.batches > 0) this.log.info({ batches: r.batches, readings: r.readings }, 'pruned delivered data past retention');
      this.pruneFailed.recovered();
    } catch (err) {
      this.pruneFailed.report(err);
    }
  }
}

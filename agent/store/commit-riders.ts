import type { Db } from './database.js';

interface Rider {
  write(): void;
  onError(err: unknown): void;
}

/**
 * How long a rider waits for a reading commit before it is written alone: twice the default
 * store.commit_interval_ms, so a stream of readings (which commits at least once an interval)
 * always carries it, and an idle agent's status is at most this much later than its own period.
 */
export const RIDER_MAX_WAIT_MS = 2000;

/**
 * How long a rider waits while readings are queued for a commit (store.commit_interval_ms, at most
 * 5,000, holds them): that commit is sure to come, so the rider takes it rather than a
 * transaction of its own. 20 sensors at 1 Hz commit every 5 s; with RIDER_MAX_WAIT_MS alone the
 * status snapshot was written alone about every other time (flash-wear bench: 1,150-1,156 MB/day
 * against 1,003-1,009 with it riding, docs/performance.md).
 */
export const RIDER_QUEUED_MAX_WAIT_MS = 6000;

/**
 * Writes that need no fsync of their own (the periodic status snapshot, the inference stage's
 * saved series state): they ride in the next reading commit's transaction. Every transaction is a
 * WAL fsync that writes its pages again plus the 4 KiB page it shares with the last commit (flash
 * wear, issue 13; docs/performance.md, fourth round). A rider waits at most `maxWaitMs` (and never past its owner's
 * next one of the same key): then it is written alone, so an idle agent still writes it, late by
 * at most that.
 */
export class CommitRiders {
  private readonly waiting = new Map<string, Rider>();
  private timer: NodeJS.Timeout | undefined;
  /** When the first rider now waiting came. */
  private waitingSince = 0;
  /** Whether readings are queued for a commit (the store writer tells, pipeline/group-commit.ts); none by default. */
  private commitQueued: () => boolean = () => false;

  constructor(
    private readonly db: Db,
    private readonly maxWaitMs = RIDER_MAX_WAIT_MS,
    private readonly queuedMaxWaitMs = RIDER_QUEUED_MAX_WAIT_MS,
  ) {}

  /** Lets riders wait up to RIDER_QUEUED_MAX_WAIT_MS while `queued()` says a reading commit is coming. */
  waitForQueuedCommits(queued: () => boolean): void {
    this.commitQueued = queued;
  }

  /** Queues `write` for the next reading commit; `onError` gets its failure (the commit itself goes on). */
  ride(key: string, write: () => void, onError: (err: unknown) => void): void {
    if (this.waiting.has(key)) this.flushAlone();
    this.waiting.set(key, { write, onError });
    if (this.timer === undefined) {
      this.waitingSince = performance.now();
      this.arm(this.maxWaitMs);
    }
  }

  private arm(ms: number): void {
    this.timer = setTimeout(() => this.waitedOut(), ms);
    this.timer.unref();
  }

  /**
   * Their wait is over: written alone, unless a reading commit is queued and the longer wait is not
   * over yet; then looked at again after the short wait (a queue that empties without a commit
   * taking them, a failed one, does not hold them for the whole longer wait).
   */
  private waitedOut(): void {
    const left = this.queuedMaxWaitMs - (performance.now() - this.waitingSince);
    if (left > 0 && this.commitQueued()) this.arm(Math.min(left, this.maxWaitMs));
    else this.flushAlone();
  }

  get size(): number {
    return this.waiting.size;
  }

  /**
   * Called inside the reading commit's transaction. Each rider runs in a savepoint of its own, so
   * a rider that fails is rolled back alone and reported, and the readings still commit.
   */
  runInside(): void {
    for (const rider of this.waiting.values()) {
      try {
        this.db.transaction(rider.write)();
      } catch (err) {
        rider.onError(err);
      }
    }
  }

  /** After the transaction that ran them committed: they are written. */
  committed(): void {
    this.waiting.clear();
    clearTimeout(this.timer);
    this.timer = undefined;
  }

  /** Writes what waits in a transaction of its own (no reading commit came; or at shutdown). */
  flushAlone(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.waiting.size === 0) return;
    const riders = [...this.waiting.values()];
    try {
      this.db.transaction(() => this.runInside())();
    } catch (err) {
      // The commit itself failed (a full disk): each owner hears it and queues its next write.
      for (const rider of riders) rider.onError(err);
    }
    this.committed();
  }
}

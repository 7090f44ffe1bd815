import type { Db } from './database.js';

interface Rider {
  write(): void;
  onError(err: unknown): void;
}

/**
 * Writes that need no fsync of their own (the periodic status snapshot, the inference stage's
 * saved series state): they ride in the next reading commit's transaction. Every transaction is a
 * WAL fsync, and on ext4 each fsync also commits ~8.5 KB of file-system journal (flash wear,
 * issue 13; docs/performance.md). A rider waits at most until its owner queues the next one of
 * the same key: then the waiting one is written alone first, so an idle agent still writes it one
 * period late, never not at all.
 */
export class CommitRiders {
  private readonly waiting = new Map<string, Rider>();

  constructor(private readonly db: Db) {}

  /** Queues `write` for the next reading commit; `onError` gets its failure (the commit itself goes on). */
  ride(key: string, write: () => void, onError: (err: unknown) => void): void {
    if (this.waiting.has(key)) this.flushAlone();
    this.waiting.set(key, { write, onError });
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
  }

  /** Writes what waits in a transaction of its own (no reading commit came; or at shutdown). */
  flushAlone(): void {
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

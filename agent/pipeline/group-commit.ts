import type { ReadingSink, Submission, SubmitResult } from '../contracts/reading-sink.js';
import type { ReadingStore } from '../store/reading-store.js';
import type { StoredReading } from '../types.js';

interface Pending {
  sub: Submission;
  resolve(r: SubmitResult): void;
  reject(e: unknown): void;
}

/**
 * Turns many concurrent `submit` calls into few SQLite transactions. Everything submitted
 * while the previous commit ran goes into the next one, so with a steady stream of messages
 * each fsync carries many readings; an idle agent commits at once, with no added latency.
 * A promise resolves only after its readings are committed: the moment a source may acknowledge.
 */
export class GroupCommitWriter implements ReadingSink {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly listeners: ((accepted: number) => void)[] = [];
  private readonly readingListeners: ((readings: StoredReading[]) => void)[] = [];
  private onFull: (() => void) | undefined;

  constructor(
    private readonly store: ReadingStore,
    private readonly maxPerCommit = 5000,
  ) {}

  /** Called after every commit with the number of new readings (the batcher listens). */
  onCommitted(listener: (accepted: number) => void): void {
    this.listeners.push(listener);
  }

  /** Called after every commit with the readings it inserted, ids included (inference and metrics listen). */
  onCommittedReadings(listener: (readings: StoredReading[]) => void): void {
    this.readingListeners.push(listener);
  }

  submit(sub: Submission): Promise<SubmitResult> {
    if (this.closed) return Promise.reject(new Error('store writer is closed (agent shutting down)'));
    return new Promise((resolve, reject) => {
      this.queue.push({ sub, resolve, reject });
      if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /**
   * Called when a commit fails because the disk (or SQLite's page limit) is full: it frees space
   * (store/budget.ts) and the commit is tried once more. If that fails too, the submissions are
   * rejected, so nothing is acknowledged and the sources push back (MQTT withholds the PUBACK,
   * CoAP answers 5.03).
   */
  onStoreFull(handler: () => void): void {
    this.onFull = handler;
  }

  private commitWithRoom(subs: Submission[], stored: StoredReading[] | undefined): SubmitResult[] {
    try {
      return this.store.commit(subs, Date.now(), stored);
    } catch (err) {
      if (!this.onFull || (err as { code?: string }).code !== 'SQLITE_FULL') throw err;
      this.onFull();
      // The failed transaction was rolled back: what it reported as inserted was not.
      if (stored) stored.length = 0;
      return this.store.commit(subs, Date.now(), stored);
    }
  }

  /** Commits whatever is queued now; used by the scheduler and at shutdown. */
  flush(): void {
    this.scheduled = false;
    while (this.queue.length > 0) {
      let count = 0;
      let take = 0;
      while (take < this.queue.length && (take === 0 || count + this.queue[take]!.sub.readings.length <= this.maxPerCommit)) {
        count += this.queue[take]!.sub.readings.length;
        take++;
      }
      const group = this.queue.splice(0, take);
      let results: SubmitResult[];
      const stored: StoredReading[] | undefined = this.readingListeners.length > 0 ? [] : undefined;
      try {
        results = this.commitWithRoom(
          group.map((p) => p.sub),
          stored,
        );
      } catch (err) {
        for (const p of group) p.reject(err);
        continue;
      }
      let accepted = 0;
      group.forEach((p, i) => {
        accepted += results[i]!.accepted;
        p.resolve(results[i]!);
      });
      if (accepted > 0) for (const l of this.listeners) l(accepted);
      if (stored && stored.length > 0) for (const l of this.readingListeners) l(stored);
    }
  }

  close(): void {
    this.flush();
    this.closed = true;
  }
}

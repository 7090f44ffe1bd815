import type { ReadingStore, Submission, SubmitResult } from '../store/reading-store.js';

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
export class GroupCommitWriter {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly listeners: ((accepted: number) => void)[] = [];
  private readonly submissionListeners: ((sub: Submission, result: SubmitResult) => void)[] = [];

  constructor(
    private readonly store: ReadingStore,
    private readonly maxPerCommit = 5000,
  ) {}

  /** Called after every commit with the number of new readings (the batcher listens). */
  onCommitted(listener: (accepted: number) => void): void {
    this.listeners.push(listener);
  }

  /** Called after every commit once per submission with its result (metrics count readings per source and sensor). */
  onSubmissionCommitted(listener: (sub: Submission, result: SubmitResult) => void): void {
    this.submissionListeners.push(listener);
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
      try {
        results = this.store.commit(group.map((p) => p.sub));
      } catch (err) {
        for (const p of group) p.reject(err);
        continue;
      }
      let accepted = 0;
      group.forEach((p, i) => {
        accepted += results[i]!.accepted;
        p.resolve(results[i]!);
        for (const l of this.submissionListeners) l(p.sub, results[i]!);
      });
      if (accepted > 0) for (const l of this.listeners) l(accepted);
    }
  }

  close(): void {
    this.flush();
    this.closed = true;
  }
}

import type { ReadingSink, Submission, SubmitResult } from '../contracts/reading-sink.js';
import type { ReadingStore } from '../store/reading-store.js';
import type { StoredReading } from '../types.js';

/**
 * Readings that make a commit due at once with store.commit_interval_ms set, when they gathered
 * within FAST_FILL_MS: about one SQLite page of readings rows, so a commit of fewer would rewrite
 * pages the next one writes again, and at 5,000 readings/s they gather in ~13 ms.
 */
export const COALESCE_READINGS = 64;

/**
 * A group that took longer than this to reach COALESCE_READINGS (a rate under 64/s) waits for the
 * interval instead: committing it by size saved no latency anyone waits for (the interval bounds
 * it) and cost a commit. 20 sensors at 1 Hz filled 64 in 3.2 s and committed every 3.2 s instead
 * of every 5 s (flash-wear bench: store writes scale with commits, docs/performance.md).
 */
export const FAST_FILL_MS = 1000;

/**
 * The most readings a group waits with, however slowly they came: a commit of this many writes
 * each page once already, and what waits for a commit (PUBACKs, CoAP and serial replies) stays
 * well under the MQTT read-ahead (half of max_inflight, 500 by default).
 */
export const MAX_COALESCE_READINGS = 256;

/**
 * The tail of a burst: a group is due once it has gathered for TAIL_FILL_FACTOR times as long as the
 * last full group took (at least TAIL_MIN_WAIT_MS, as readings arrive in bursts of a socket read),
 * so a steady high rate still fills its groups and the last readings of a burst do not wait the
 * whole store.commit_interval_ms (the end-to-end bench: 50,000 readings in ~3 s, then up to 5 s for
 * the last few).
 */
const TAIL_FILL_FACTOR = 4;
const TAIL_MIN_WAIT_MS = 10;

interface Pending {
  sub: Submission;
  resolve(r: SubmitResult): void;
  reject(e: unknown): void;
}

/**
 * Turns many concurrent `submit` calls into few SQLite transactions. Everything submitted
 * while the previous commit ran goes into the next one, so with a steady stream of messages
 * each fsync carries many readings; at a low rate, readings within store.commit_interval_ms share
 * a commit (flash wear), and with the interval 0 an idle agent commits at once.
 * A promise resolves only after its readings are committed: the moment a source may acknowledge.
 */
export class GroupCommitWriter implements ReadingSink {
  private queue: Pending[] = [];
  private scheduled = false;
  private closed = false;
  private readonly listeners: ((accepted: number) => void)[] = [];
  private readonly readingListeners: ((readings: StoredReading[]) => void)[] = [];
  private onFull: (() => void) | undefined;

  private queuedReadings = 0;
  private timer: NodeJS.Timeout | undefined;
  private dueAt = 0;
  private lastCommitAt = -Infinity;
  /** When the first submission of the queued group arrived. */
  private groupStartedAt = 0;
  /**
   * How long the last group that became due by its size (COALESCE_READINGS) took to gather; Infinity
   * after a group committed for any other reason. While readings come that fast, a smaller group
   * (the tail of a burst) waits TAIL_FILL_FACTOR times this, not the whole interval: at 5,000/s ~50 ms.
   */
  private fillMs = Infinity;
  /** Commits whose listeners have not run yet (flush, notify). */
  private unnotified: { stored: StoredReading[] | undefined; accepted: number }[] = [];

  /**
   * `commitIntervalMs` (store.commit_interval_ms): at most one commit per interval, so the readings
   * of a low rate share one fsync. A throttle, not a debounce: a submission to an agent that has not
   * committed for an interval commits at once (a first reading after a start or a quiet spell is
   * acknowledged without waiting), later ones wait for the interval since that commit. A commit is
   * due at once when COALESCE_READINGS are queued within FAST_FILL_MS, so a high rate gets no added
   * latency beyond filling that, and at any rate when MAX_COALESCE_READINGS are.
   */
  constructor(
    private readonly store: ReadingStore,
    private readonly maxPerCommit = 5000,
    private readonly commitIntervalMs = 0,
    /** FAST_FILL_MS; a test sets it below 0 to have every group gather slowly. */
    private readonly fastFillMs = FAST_FILL_MS,
  ) {}

  /** Whether submissions wait for a commit (one is scheduled): writes riding the next commit may wait for it (store/commit-riders.ts). */
  get commitQueued(): boolean {
    return this.queue.length > 0;
  }

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
      if (this.queue.length === 0) this.groupStartedAt = performance.now();
      this.queue.push({ sub, resolve, reject });
      // A submission without readings (a message the guard dropped, counted) still writes a row and
      // waits for its commit: counted as one, or a flood of dropped messages would wait out
      // commit_interval_ms per read-ahead window (guard-flood: ~560 messages/s judged, at load 0).
      this.queuedReadings += Math.max(1, sub.readings.length);
      const wait = Math.min(this.commitIntervalMs, sub.commitWithinMs ?? Infinity);
      const now = performance.now();
      // While readings come fast, a group that has not filled within a few times the last fill
      // (the tail of a burst) is due then, not after the whole interval.
      const tailDue = this.groupStartedAt + Math.max(TAIL_FILL_FACTOR * this.fillMs, TAIL_MIN_WAIT_MS);
      const due = Math.min(this.lastCommitAt + wait, tailDue);
      if (wait > 0 && due > now && !this.dueBySize(now)) {
        // The commit is due at the earliest deadline of what it carries.
        if (this.timer === undefined || due < this.dueAt) {
          clearTimeout(this.timer);
          this.dueAt = due;
          this.timer = setTimeout(() => this.flush(), due - now);
        }
      } else if (!this.scheduled) {
        this.scheduled = true;
        setImmediate(() => this.flush());
      }
    });
  }

  /** Whether the queued group is due by its size: COALESCE_READINGS gathered fast, or MAX_COALESCE_READINGS at any rate. */
  private dueBySize(now: number): boolean {
    if (this.queuedReadings >= MAX_COALESCE_READINGS) return true;
    return this.queuedReadings >= COALESCE_READINGS && now - this.groupStartedAt <= this.fastFillMs;
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
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    // A group that filled up measures the rate; any other commit (a timer's, a sender's deadline, the
    // first after a quiet spell) ends it, so a low rate after a burst waits the interval again.
    const gathered = performance.now() - this.groupStartedAt;
    this.fillMs = this.queuedReadings >= COALESCE_READINGS && gathered <= this.fastFillMs ? gathered : Infinity;
    this.queuedReadings = 0;
    // An earlier commit's listeners, if their turn has not come yet, run before this commit: the
    // store budget must act between commits (a timer's flush can come before that turn).
    this.notify();
    if (this.queue.length === 0) return;
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
      if ((stored && stored.length > 0) || accepted > 0) this.unnotified.push({ stored, accepted });
      // More groups in this flush: their acknowledgements leave only when it returns anyway, and the
      // store budget must act between groups (commitGroupLimit bounds a group for that reason).
      if (this.queue.length > 0) this.notify();
    }
    this.lastCommitAt = performance.now();
    // The last group's listeners (batch cut, inference, budget) run in a later turn, after the
    // sources have sent its acknowledgements: run here, a batch cut of 500 readings or a model's
    // scoring (5-27 ms measured) held up every PUBACK of the group.
    if (this.unnotified.length > 0) setImmediate(() => this.notify());
  }

  private notify(): void {
    const commits = this.unnotified;
    this.unnotified = [];
    for (const { stored, accepted } of commits) {
      // The readings first: the batcher caches their leaves (pipeline/leaf-cache.ts) before the count may make it cut them.
      if (stored && stored.length > 0) for (const l of this.readingListeners) l(stored);
      if (accepted > 0) for (const l of this.listeners) l(accepted);
    }
  }

  /** Commits what is queued and tells the listeners at once (shutdown: nothing waits for a later turn). */
  close(): void {
    this.flush();
    this.notify();
    this.closed = true;
  }
}

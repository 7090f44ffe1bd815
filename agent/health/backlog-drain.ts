import type { Logger } from '../log.js';
import { LineProgress, type Progress } from '../progress/line-progress.js';
import type { Db } from '../store/database.js';
import { HealthQueries } from '../store/health-queries.js';

interface Drain {
  progress: Progress;
  lastSeq: number;
  total: number;
  done: number;
}

/** Below this many pending batches there is no backlog worth reporting (one or two is normal flow). */
export const DRAIN_REPORT_MIN_BATCHES = 5;
/** Unbatched readings at or above this when the pending batches run out are a held backlog still to be cut, not the end. */
const HELD_READINGS_MIN = 1000;

/**
 * Reports the delivery of an uplink backlog (at start, or after an outage) as plain periodic
 * log lines: delivered/total batches and rate, until the batches pending when it began are
 * all delivered. The agent's stderr is its pino log, so the lines go there as log events.
 */
export class BacklogDrainReporter {
  private active: Drain | undefined;
  private readonly queries: HealthQueries;

  constructor(
    db: Db,
    private readonly log: Logger,
    private readonly opts: { minBatches?: number; lineIntervalS?: number } = {},
  ) {
    this.queries = new HealthQueries(db);
  }

  /** The forwarder calls this when it starts and when the uplink recovers from failures. */
  maybeStart(): void {
    if (this.active) return;
    const { n, last, oldest } = this.queries.pendingSummary();
    // A backlog is batches waiting, or readings held unbatched behind batch.max_pending (they become batches as it drains).
    if (last === null || (n < (this.opts.minBatches ?? DRAIN_REPORT_MIN_BATCHES) && this.queries.countUnbatchedUpTo(HELD_READINGS_MIN) < HELD_READINGS_MIN)) return;
    this.log.info({ backlog_batches: n, oldest_cut_at: oldest === null ? null : new Date(oldest).toISOString() }, `uplink backlog: delivering ${n} pending batches`);
    const log = this.log;
    const drain: { progress?: Progress; lastSeq: number; total: number; done: number } = { lastSeq: last, total: n, done: 0 };
    // progress.ts writes formatted lines to a stream; each line becomes one log event.
    const stream = {
      isTTY: false,
      write(chunk: string) {
        log.info({ backlog_delivered: drain.done, backlog_total: drain.total }, chunk.trim());
        return true;
      },
    } as unknown as NodeJS.WriteStream;
    drain.progress = new LineProgress({ label: 'uplink backlog', total: n, unit: 'batches', lineIntervalS: this.opts.lineIntervalS ?? 5 }, stream);
    this.active = drain as Drain;
  }

  /**
   * A batch of the backlog was delivered or rejected by the receiver (either way, it is no longer
   * waiting). Batches cut during the drain from readings held back by batch.max_pending belong to
   * the same backlog: the total grows with them, and "done" is said once, when no batch is pending
   * and no held readings wait to be cut (one episode, one "done": issue 20).
   */
  settled(_seq: number): void {
    const a = this.active;
    if (!a) return;
    a.done++;
    const { n, last } = this.queries.pendingSummary();
    if (last !== null && last > a.lastSeq) a.lastSeq = last;
    // The forwarder reports the outcome before it records it: the batch just settled still reads as pending.
    const left = Math.max(0, n - 1);
    const total = a.done + left;
    if (total !== a.total) {
      a.total = total;
      a.progress.setTotal(total);
    }
    const finished = left === 0 && this.queries.countUnbatchedUpTo(HELD_READINGS_MIN) < HELD_READINGS_MIN;
    if (finished) this.active = undefined;
    // The final line needs the count too: the reporter only learns it through update().
    a.progress.update(a.done);
    if (finished) a.progress.finish();
  }
}

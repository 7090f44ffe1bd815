import type { Logger } from '../log.js';
import { createProgress, type Progress } from '../progress/progress.js';
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
    if (n < (this.opts.minBatches ?? DRAIN_REPORT_MIN_BATCHES) || last === null) return;
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
    drain.progress = createProgress({ label: 'uplink backlog', total: n, unit: 'batches', stream, plain: true, lineIntervalS: this.opts.lineIntervalS ?? 5 });
    this.active = drain as Drain;
  }

  /** A batch of the backlog was delivered or rejected by the receiver (either way, it is no longer waiting). */
  settled(seq: number): void {
    const a = this.active;
    if (!a || seq > a.lastSeq) return;
    a.done++;
    const finished = seq >= a.lastSeq || a.done >= a.total;
    if (finished) this.active = undefined;
    // The final line needs the count too: the reporter only learns it through update().
    a.progress.update(a.done);
    if (finished) a.progress.finish();
  }
}

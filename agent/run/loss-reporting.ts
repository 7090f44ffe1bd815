import type { ClockStep } from '../clock/clock-step.js';
import { SensorRateWatch } from '../ingest/rate-watch.js';
import type { Logger } from '../log.js';
import type { GroupCommitWriter } from '../pipeline/group-commit.js';
import type { Db } from '../store/database.js';
import type { AgentEventInput, EventStore } from '../store/event-store.js';
import { getMeta, setMeta } from '../store/meta.js';
import type { ReadingStore } from '../store/reading-store.js';
import { RepeatedLog } from '../util/repeated-log.js';

/**
 * What the run reports about data lost or mistimed before it reached the store (issue 20): events
 * for upstream with their counters (clock steps, lost broker sessions), the expected-rate watch's
 * gaps, and the small persistent memo sources keep. A full store never turns any of it into a crash.
 */
export class LossReporting {
  private readonly eventFailed: RepeatedLog;

  constructor(
    private readonly db: Db,
    private readonly events: EventStore,
    private readonly counters: ReadingStore,
    private readonly log: Logger,
  ) {
    this.eventFailed = new RepeatedLog(log, 'warn', 'could not record an event for upstream (the store refused it)');
  }

  /** An event for upstream (Events API) and its counter (label: the event key). */
  record(event: AgentEventInput, counter?: string): void {
    try {
      this.events.record(event);
      if (counter) this.counters.addCounter(counter, event.key);
      this.eventFailed.recovered();
    } catch (err) {
      this.eventFailed.report(err, { kind: event.kind });
    }
  }

  /**
   * The wall clock stepped (monotonic clock against wall clock, clock/clock-step.ts): readings it
   * stamps are flagged not synchronised until it settles; the network hears of it as an event.
   */
  clockStepped(step: ClockStep, settleS: number): void {
    this.log.warn(
      { step_ms: step.stepMs, before: new Date(step.beforeMs).toISOString(), after: new Date(step.afterMs).toISOString(), settle_s: settleS },
      'gateway clock stepped: gateway-timed readings are flagged not synchronised until it has been stable for clock.step_settle_s',
    );
    this.record({ kind: 'clock.step', key: '', ts: step.afterMs, detail: { step_ms: step.stepMs, before_ms: step.beforeMs, after_ms: step.afterMs } }, 'clock_steps');
  }

  /** A source's few persistent values, in meta under `source.ID.KEY` (best effort). */
  memo(id: string): { get(key: string): string | undefined; set(key: string, value: string): void } {
    return {
      get: (key) => getMeta(this.db, `source.${id}.${key}`),
      set: (key, value) => {
        try {
          setMeta(this.db, `source.${id}.${key}`, value);
        } catch (err) {
          this.eventFailed.report(err, { source: id, key });
        }
      },
    };
  }

  /**
   * Silent gaps of sensors without `seq` become counted gaps (counter rate_gaps, per sensor): the
   * expected-rate watch (ingest/rate-watch.ts) judges each commit's readings off the ack path.
   */
  watchRates(writer: GroupCommitWriter): void {
    const watch = new SensorRateWatch();
    const failed = new RepeatedLog(this.log, 'warn', 'could not count rate gaps (the store refused the write)');
    const gapLog = new RepeatedLog(this.log, 'warn', 'a sensor without seq went silent for several of its intervals: readings lost upstream, counted in rate_gaps');
    writer.onCommittedReadings((readings) => {
      const gaps = watch.observe(readings);
      if (gaps.length === 0) return;
      const first = gaps[0]!;
      gapLog.report(undefined, { sensor: first.sensor, source: first.source, missing: first.missing, gap_ms: first.gapMs, interval_ms: first.intervalMs, sensors: gaps.length });
      try {
        this.counters.addCounters(gaps.map((g) => ({ name: 'rate_gaps', label: g.sensor, n: g.missing })));
      } catch (err) {
        failed.report(err);
      }
    });
  }
}

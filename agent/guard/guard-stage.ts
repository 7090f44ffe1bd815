import type { ReadingSink, Submission, SubmitResult } from '../contracts/reading-sink.js';
import type { Logger } from '../log.js';
import type { Reading } from '../types.js';
import { RepeatedLog } from '../util/repeated-log.js';
import { sensorKey, type GuardBatch, type GuardCheck } from './check.js';

const TICK_MS = 1000;
/** Characters of a source's origin detail the guard keeps: with the source id and `source:` a quarantine key stays within 256. */
const MAX_ORIGIN = 200;

/** Something the stage runs about once a second besides the checks' own ticks (operator requests). */
export interface GuardUpkeep {
  tick(now: number): void;
}

/**
 * The guard stage, between ingest and commit (design.md "Data flow"): every submission passes
 * the checks in order, each a module with one job (watches, quarantine, maintenance, budgets,
 * quality flags, agent/guard/). Checks annotate readings with flags (docs/wire-format.md §12.3)
 * or drop them by budget; the rest goes on to commit unaltered but for its flags. Drops are
 * counted in the same transaction (counter guard_dropped, by reason and origin) and carried
 * upstream in the next batch's `drops` (§4.5). A submission nobody flagged passes as it is.
 */
export class GuardStage implements ReadingSink {
  private timer: NodeJS.Timeout | undefined;
  private readonly tickFailed: RepeatedLog;
  private readonly checkFailed: RepeatedLog;
  /** Failures per check since start (a bug, never an input): status shows them. */
  readonly failures = new Map<string, number>();

  constructor(
    private readonly next: ReadingSink,
    private readonly checks: readonly GuardCheck[],
    private readonly upkeep: readonly GuardUpkeep[],
    log: Logger,
    private readonly now: () => number = Date.now,
  ) {
    this.checkFailed = new RepeatedLog(log, 'error', 'a guard check failed on a submission; its readings go on without that check (a bug: please report it)');
    this.tickFailed = new RepeatedLog(log, 'warn', 'a guard check could not save its state or apply a request (the store refused); retrying each second');
  }

  start(): void {
    this.tick();
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.tick();
  }

  submit(sub: Submission): Promise<SubmitResult> {
    const n = sub.readings.length;
    if (n === 0) return this.next.submit(sub);
    const batch: GuardBatch = {
      source: sub.source,
      // Bounded, so every key built from it fits an event (§12.5: 256 units).
      origin: sub.origin ? `${sub.source}:${sub.origin.slice(0, MAX_ORIGIN)}` : sub.source,
      now: this.now(),
      bytes: sub.bytes,
      readings: sub.readings,
      keys: sub.readings.map((r) => sensorKey(sub.source, r.sensor)),
      flags: new Uint16Array(n),
      dropped: new Array<string | undefined>(n),
    };
    for (const c of this.checks) {
      try {
        c.inspect(batch);
      } catch (err) {
        // A failing check must not stop the readings (or the other checks): counted and logged, the rest goes on.
        this.checkFailed.report(err, { check: c.name, source: sub.source });
        this.failures.set(c.name, (this.failures.get(c.name) ?? 0) + 1);
      }
    }
    return this.next.submit(this.annotated(sub, batch));
  }

  private annotated(sub: Submission, b: GuardBatch): Submission {
    let changed = false;
    for (let i = 0; i < b.readings.length && !changed; i++) changed = b.flags[i] !== 0 || b.dropped[i] !== undefined;
    if (!changed) return sub;
    const readings: Reading[] = [];
    const dropCounts = new Map<string, number>();
    const drops = new Map<string, number>();
    b.readings.forEach((r, i) => {
      const why = b.dropped[i];
      if (why) {
        const label = `${why} ${b.origin}`;
        dropCounts.set(label, (dropCounts.get(label) ?? 0) + 1);
        drops.set(r.sensor, (drops.get(r.sensor) ?? 0) + 1);
        return;
      }
      const f = b.flags[i]!;
      // Flags annotate: a copy with `flags`, every other field as the source made it.
      readings.push(f === 0 ? r : { ...r, flags: (r.flags ?? 0) | f });
    });
    return {
      ...sub,
      readings,
      ...(dropCounts.size > 0
        ? {
            counts: [...(sub.counts ?? []), ...[...dropCounts].map(([label, n]) => ({ name: 'guard_dropped', label, n }))],
            drops: [...(sub.drops ?? []), ...[...drops].map(([sensor, n]) => ({ sensor, n }))],
          }
        : {}),
    };
  }

  /** The time-based judgements (silence, quiet releases, maintenance ends, operator requests): the timer runs them every second. */
  tick(): void {
    const now = this.now();
    let failed = false;
    // Each on its own: one failing (a full disk) must not stop the others' time-based judgements.
    for (const u of [...this.checks, ...this.upkeep]) {
      try {
        u.tick?.(now);
      } catch (err) {
        failed = true;
        this.tickFailed.report(err, { check: 'name' in u ? u.name : 'requests' });
      }
    }
    if (!failed) this.tickFailed.recovered();
  }
}

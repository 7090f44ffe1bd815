import { BoundedMap, sensorKey, type GuardBatch, type GuardCheck } from './check.js';
import type { SourcePolicy } from './config.js';
import { originQuarantineKey, type QuarantineBook } from './quarantine.js';

/** Sensors remembered as known (per source); beyond it the least recently seen is forgotten. */
export const MAX_KNOWN_SENSORS = 100_000;
const WINDOW_MS = 10_000;

interface Window {
  start: number;
  /** New ids in the previous and the current window: the rate over the last 10-20 s without a list of times. */
  previous: number;
  current: number;
}

/**
 * A burst of never-seen sensor ids from one origin (a rogue client inventing ids, a bridge gone
 * mad) quarantines the origin (reason new_id_burst): more than `new_ids_per_10s` in the last ten
 * seconds. The known ids are seeded from the store at start, so a restart is no burst; sensors of
 * an origin that were known before keep their history, but are quarantined with it.
 */
export class NewIdWatch implements GuardCheck {
  readonly name = 'new-ids';
  private readonly known = new BoundedMap<true>(MAX_KNOWN_SENSORS);
  private readonly windows = new BoundedMap<Window>(10_000);

  constructor(
    private readonly book: QuarantineBook,
    private readonly policyOf: (source: string) => SourcePolicy,
    seed: readonly { source: string; sensor: string }[],
  ) {
    for (const s of seed) this.known.set(sensorKey(s.source, s.sensor), true);
  }

  inspect(b: GuardBatch): void {
    let fresh = 0;
    for (const key of b.keys) {
      if (this.known.get(key)) continue;
      this.known.set(key, true);
      fresh++;
    }
    if (fresh === 0) return;
    const policy = this.policyOf(b.source);
    if (!policy.quarantine || policy.new_ids_per_10s === 0) return;
    let w = this.windows.get(b.origin);
    if (!w) this.windows.set(b.origin, (w = { start: b.now, previous: 0, current: 0 }));
    if (b.now - w.start >= 2 * WINDOW_MS) Object.assign(w, { start: b.now, previous: 0, current: 0 });
    else if (b.now - w.start >= WINDOW_MS) Object.assign(w, { start: w.start + WINDOW_MS, previous: w.current, current: 0 });
    w.current += fresh;
    // The previous window weighted by how much of it still lies in the last 10 s.
    const recent = w.current + w.previous * Math.max(0, 1 - (b.now - w.start) / WINDOW_MS);
    const qkey = originQuarantineKey(b.origin);
    if (recent > policy.new_ids_per_10s) this.book.start(qkey, 'new_id_burst', b.now, { new_ids_10s: Math.round(recent), limit: policy.new_ids_per_10s });
  }
}

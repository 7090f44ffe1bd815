import { BoundedMap, type GuardBatch, type GuardCheck, type GuardReports } from './check.js';

interface Size {
  mean: number;
  seen: number;
  reportedAt: number;
}

const WARMUP = 20;
const ALPHA = 0.05;
/** A payload this many times an origin's learned mean size (and at least MIN_OUTLIER_BYTES) is an outlier. */
export const PAYLOAD_OUTLIER_FACTOR = 10;
const MIN_OUTLIER_BYTES = 1024;

/**
 * Learns each origin's payload size online and reports a payload far larger than usual (a probe
 * for parser limits, a device sending garbage): event guard.payload_size at most once a minute
 * per origin, counted every time (counter guard_payload_outliers). The size limits themselves are
 * each source's (max_payload_bytes); this says something changed below them.
 */
export class PayloadWatch implements GuardCheck {
  readonly name = 'payload';
  private readonly sizes = new BoundedMap<Size>(10_000);

  constructor(
    private readonly reports: GuardReports,
    private readonly count: (name: string, label: string) => void,
  ) {}

  inspect(b: GuardBatch): void {
    if (b.bytes === undefined) return;
    let s = this.sizes.get(b.origin);
    if (!s) {
      this.sizes.set(b.origin, { mean: b.bytes, seen: 1, reportedAt: -Infinity });
      return;
    }
    if (s.seen >= WARMUP && b.bytes > MIN_OUTLIER_BYTES && b.bytes > PAYLOAD_OUTLIER_FACTOR * s.mean) {
      this.count('guard_payload_outliers', b.origin);
      if (b.now - s.reportedAt >= 60_000) {
        s.reportedAt = b.now;
        this.reports.event({ kind: 'guard.payload_size', key: b.origin.slice(0, 256), ts: b.now, detail: { bytes: b.bytes, mean_bytes: Math.round(s.mean) } });
      }
      return; // an outlier does not teach the usual size
    }
    s.mean += ALPHA * (b.bytes - s.mean);
    s.seen++;
  }
}

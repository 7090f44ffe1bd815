import { BoundedMap, MAX_TRACKED_SENSORS, type GuardBatch, type GuardCheck, type GuardReports } from './check.js';
import type { SourcePolicy } from './config.js';
import { originQuarantineKey, sensorQuarantineKey, type QuarantineBook } from './quarantine.js';

interface Bucket {
  tokens: number;
  at: number;
  /** Readings dropped in the current episode of excess (reset after a minute without any). */
  dropped: number;
  lastDrop: number;
}

const EPISODE_GAP_MS = 60_000;

function take(bucket: Bucket, perS: number, burst: number, now: number): boolean {
  bucket.tokens = Math.min(burst, bucket.tokens + ((now - bucket.at) / 1000) * perS);
  bucket.at = now;
  if (bucket.tokens >= 1) {
    bucket.tokens -= 1;
    return true;
  }
  return false;
}

/**
 * Per-sensor and per-origin rate budgets (token buckets: `*_per_s`, `*_burst` deep, per source in
 * YAML; off until configured). The excess is dropped and counted (counter guard_dropped, drops in the next batch,
 * docs/wire-format.md §4.5), and the start of each episode of excess is an event
 * (guard.rate_limited). A sensor or an origin that goes on beyond its budget by a whole burst is
 * quarantined (reason rate_budget). Quarantined readings are held to the quarantine's budget
 * before they get here.
 */
export class RateBudget implements GuardCheck {
  readonly name = 'rate-budget';
  private readonly sensors = new BoundedMap<Bucket>(MAX_TRACKED_SENSORS);
  private readonly origins = new BoundedMap<Bucket>(10_000);

  constructor(
    private readonly book: QuarantineBook,
    private readonly reports: GuardReports,
    private readonly policyOf: (source: string) => SourcePolicy,
  ) {}

  inspect(b: GuardBatch): void {
    const p = this.policyOf(b.source);
    if (p.sensor_per_s === 0 && p.origin_per_s === 0) return;
    let origin = this.origins.get(b.origin);
    if (!origin) this.origins.set(b.origin, (origin = { tokens: p.origin_burst, at: b.now, dropped: 0, lastDrop: -Infinity }));
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      const key = b.keys[i]!;
      let s = this.sensors.get(key);
      if (!s) this.sensors.set(key, (s = { tokens: p.sensor_burst, at: b.now, dropped: 0, lastDrop: -Infinity }));
      if (p.sensor_per_s > 0 && !take(s, p.sensor_per_s, p.sensor_burst, b.now)) {
        b.dropped[i] = 'sensor_budget';
        this.excess(s, r.sensor, sensorQuarantineKey(r.sensor), p.sensor_per_s, p.sensor_burst, p.quarantine, b.now);
      } else if (p.origin_per_s > 0 && !take(origin, p.origin_per_s, p.origin_burst, b.now)) {
        b.dropped[i] = 'origin_budget';
        this.excess(origin, b.origin, originQuarantineKey(b.origin), p.origin_per_s, p.origin_burst, p.quarantine, b.now);
      }
    });
  }

  private excess(bucket: Bucket, what: string, qkey: string, perS: number, burst: number, quarantine: boolean, now: number): void {
    if (now - bucket.lastDrop > EPISODE_GAP_MS) {
      bucket.dropped = 0;
      this.reports.event({ kind: 'guard.rate_limited', key: what.slice(0, 256), ts: now, detail: { per_s: perS, burst } });
    }
    bucket.lastDrop = now;
    bucket.dropped++;
    if (quarantine && bucket.dropped === burst) this.book.start(qkey, 'rate_budget', now, { per_s: perS, dropped: bucket.dropped });
  }
}

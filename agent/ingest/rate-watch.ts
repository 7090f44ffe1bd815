import type { StoredReading } from '../types.js';

/** What the watch learned about one sensor's cadence. */
export interface SensorRate {
  /** Expected ms between readings (EWMA of the intervals that were not gaps). */
  intervalMs: number;
  /** Intervals seen: the expectation is used only after WARMUP of them. */
  seen: number;
  lastTs: number;
}

export interface RateGap {
  source: string;
  sensor: string;
  /** Readings estimated missing: round(gap / interval) - 1. */
  missing: number;
  gapMs: number;
  intervalMs: number;
}

export interface RateWatchOptions {
  /** A silence longer than this many expected intervals is a gap (default 3). */
  gapFactor?: number;
  /** Sensors tracked at once; the least recently seen is forgotten beyond it (memory stays bounded). */
  maxSensors?: number;
}

const WARMUP = 10;
const ALPHA = 0.1;

/**
 * Per-sensor expected-rate tracking for sensors that send no sequence number: a sensor that
 * reports every 10 s and then nothing for 60 s has lost about 5 readings somewhere upstream
 * (a broker queue limit, a radio link), and for it that is the only way to see the loss. Times are
 * the readings' own (`ts`, sensor or gateway clock), in acceptance order per sensor; a step back
 * (a clock step, a sensor restart) restarts the learning for that sensor. Sensors with `seq` are
 * counted exactly by seq_gaps instead.
 *
 * Extension point: `observe` returns the gaps and `rates` exposes the learned cadence, so a
 * behaviour watch (guard stage) can add its own judgement of the same series without a second pass.
 */
export class SensorRateWatch {
  private readonly rates = new Map<string, SensorRate>();
  private readonly gapFactor: number;
  private readonly maxSensors: number;

  constructor(opts: RateWatchOptions = {}) {
    this.gapFactor = opts.gapFactor ?? 3;
    this.maxSensors = opts.maxSensors ?? 10_000;
  }

  /** Feeds committed readings (in id order); returns the gaps they end. */
  observe(readings: readonly StoredReading[]): RateGap[] {
    const gaps: RateGap[] = [];
    for (const r of readings) {
      if (r.seq !== undefined) continue;
      const key = `${r.source}\u0000${r.sensor}`;
      const s = this.rates.get(key);
      if (!s) {
        this.remember(key, { intervalMs: 0, seen: 0, lastTs: r.ts });
        continue;
      }
      const dt = r.ts - s.lastTs;
      s.lastTs = r.ts;
      // Refresh recency (Map order is insertion order): the least recently seen is forgotten first.
      this.rates.delete(key);
      this.rates.set(key, s);
      if (dt < 0) {
        s.seen = 0; // time went back: learn afresh
        continue;
      }
      if (dt === 0) continue; // a pack with one time: not an interval
      if (s.seen >= WARMUP && dt > this.gapFactor * s.intervalMs) {
        const missing = Math.round(dt / s.intervalMs) - 1;
        if (missing > 0) gaps.push({ source: r.source, sensor: r.sensor, missing, gapMs: dt, intervalMs: Math.round(s.intervalMs) });
        continue; // a gap does not teach the cadence
      }
      s.intervalMs = s.seen === 0 ? dt : s.intervalMs + ALPHA * (dt - s.intervalMs);
      s.seen++;
    }
    return gaps;
  }

  /** The learned cadence of a sensor, once warmed up. */
  rate(source: string, sensor: string): SensorRate | undefined {
    const s = this.rates.get(`${source}\u0000${sensor}`);
    return s && s.seen >= WARMUP ? { ...s } : undefined;
  }

  /** Sensors (warmed up) silent for more than gapFactor intervals at `now` on their own clock: readings overdue now. */
  overdue(now: number): { source: string; sensor: string; silentMs: number; intervalMs: number }[] {
    const out: { source: string; sensor: string; silentMs: number; intervalMs: number }[] = [];
    for (const [key, s] of this.rates) {
      if (s.seen < WARMUP || now - s.lastTs <= this.gapFactor * s.intervalMs) continue;
      const [source, sensor] = key.split('\u0000') as [string, string];
      out.push({ source, sensor, silentMs: now - s.lastTs, intervalMs: Math.round(s.intervalMs) });
    }
    return out;
  }

  private remember(key: string, s: SensorRate): void {
    if (this.rates.size >= this.maxSensors) this.rates.delete(this.rates.keys().next().value!);
    this.rates.set(key, s);
  }
}

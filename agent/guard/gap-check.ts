import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, type GuardBatch, type GuardCheck, type GuardReports } from './check.js';

interface Cadence {
  source: string;
  sensor: string;
  /** Learned ms between readings (EWMA of intervals that were not gaps), on the readings' own times. */
  intervalMs: number;
  /** Learned ms between arrivals, on the gateway's clock: what silence is judged by. */
  arrivalMs: number;
  seen: number;
  lastTs: number;
  lastArrival: number;
  silentReported: boolean;
  lastSeq?: number;
}

/** Intervals learned before a sensor's cadence is trusted. */
const WARMUP = 10;
const ALPHA = 0.1;
/** A pause shorter than this is no gap however fast the sensor was (a broker delivering a backlog arrives in bursts). */
const MIN_GAP_MS = 1000;

/**
 * The sensor's cadence, learned online: a reading after more than `factor` learned intervals of
 * nothing (at least a second), or whose seq skips numbers, is flagged gap_before (§12.3 bit 4: expected readings are missing before it), and a
 * sensor that has gone that long without any reading at all is reported once as event
 * sensor.silent (the "offline" signal), with sensor.back when it returns.
 */
export class GapCheck implements GuardCheck {
  readonly name = 'gap';
  private readonly cadence = new BoundedMap<Cadence>(MAX_TRACKED_SENSORS);

  constructor(
    private readonly factor: number,
    private readonly reports: GuardReports,
  ) {}

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      const key = b.keys[i]!;
      const c = this.cadence.get(key);
      if (!c) {
        this.cadence.set(key, { source: b.source, sensor: r.sensor, intervalMs: 0, arrivalMs: 0, seen: 0, lastTs: r.ts, lastArrival: b.now, silentReported: false });
        return;
      }
      const dt = r.ts - c.lastTs;
      const da = b.now - c.lastArrival;
      c.lastTs = r.ts;
      c.lastArrival = b.now;
      if (c.silentReported) {
        c.silentReported = false;
        this.reports.event({ kind: 'sensor.back', key: r.sensor, ts: b.now, detail: { source: b.source, silent_ms: da } });
      }
      if (dt < 0) {
        c.seen = 0; // time went back (a clock step, a restart): learn afresh
        return;
      }
      if (dt === 0) return; // one pack, one time: not an interval
      // A sensor that counts its readings says exactly whether one is missing; the others by their cadence, never for less than MIN_GAP_MS.
      const gap = r.seq !== undefined && c.lastSeq !== undefined ? r.seq > c.lastSeq + 1 : c.seen >= WARMUP && dt > Math.max(MIN_GAP_MS, this.factor * c.intervalMs);
      if (r.seq !== undefined) c.lastSeq = r.seq;
      if (gap) {
        b.flags[i]! |= READING_FLAGS.gap_before;
        return; // a gap teaches nothing about the cadence
      }
      c.intervalMs = c.seen === 0 ? dt : c.intervalMs + ALPHA * (dt - c.intervalMs);
      c.arrivalMs = c.seen === 0 ? Math.max(da, 1) : c.arrivalMs + ALPHA * (da - c.arrivalMs);
      c.seen++;
    });
  }

  tick(now: number): void {
    for (const [, c] of this.cadence.entries()) {
      if (c.seen < WARMUP || c.silentReported) continue;
      // At least a second of silence: arrivals in bursts (a broker backlog) have tiny learned gaps.
      const limit = Math.max(1000, this.factor * Math.max(c.arrivalMs, c.intervalMs));
      if (now - c.lastArrival <= limit) continue;
      c.silentReported = true;
      this.reports.event({ kind: 'sensor.silent', key: c.sensor, ts: now, detail: { source: c.source, silent_ms: now - c.lastArrival, interval_ms: Math.round(c.intervalMs) } }, 'sensors_silent');
    }
  }
}

import { describe, expect, it } from 'vitest';
import { SensorRateWatch } from '../../agent/ingest/rate-watch.js';
import type { StoredReading } from '../../agent/types.js';

let id = 0;
const r = (sensor: string, ts: number, seq?: number): StoredReading => ({ id: ++id, sensor, ts, timeSource: 'sensor', value: 1, source: 'mqtt', boot: 1, ...(seq !== undefined ? { seq } : {}) });

describe('expected-rate tracking for sensors without seq', () => {
  it('counts the readings missing in a silence of several intervals, once warmed up', () => {
    const w = new SensorRateWatch();
    const every10s = Array.from({ length: 20 }, (_, i) => r('t1', i * 10_000));
    expect(w.observe(every10s)).toEqual([]);
    expect(w.rate('mqtt', 't1')?.intervalMs).toBe(10_000);
    // 19 * 10 s was the last; the next arrives 60 s later: 5 missing.
    expect(w.observe([r('t1', 250_000)])).toEqual([{ source: 'mqtt', sensor: 't1', missing: 5, gapMs: 60_000, intervalMs: 10_000 }]);
    expect(w.observe([r('t1', 260_000)])).toEqual([]); // the cadence goes on unchanged
    expect(w.overdue(300_000)).toEqual([{ source: 'mqtt', sensor: 't1', silentMs: 40_000, intervalMs: 10_000 }]);
  });

  it('does not judge before warm-up, after a step back, or sensors that send seq (seq_gaps counts those)', () => {
    const w = new SensorRateWatch();
    expect(w.observe([r('a', 0), r('a', 1000), r('a', 60_000)])).toEqual([]);
    const b = Array.from({ length: 15 }, (_, i) => r('b', i * 1000));
    w.observe(b);
    expect(w.observe([r('b', 5000), r('b', 60_000)])).toEqual([]); // stepped back: learning again
    expect(w.observe(Array.from({ length: 15 }, (_, i) => r('c', i * 1000, i)).concat([r('c', 90_000, 99)]))).toEqual([]);
  });

  it('forgets the least recently seen sensor past maxSensors', () => {
    const w = new SensorRateWatch({ maxSensors: 2 });
    for (const s of ['x', 'y', 'z']) w.observe(Array.from({ length: 12 }, (_, i) => r(s, i * 1000)));
    expect(w.rate('mqtt', 'x')).toBeUndefined();
    expect(w.rate('mqtt', 'z')?.intervalMs).toBe(1000);
  });
});

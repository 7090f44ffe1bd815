import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, type GuardBatch, type GuardCheck, type GuardReports } from './check.js';

/**
 * Flags a reading's time (§12.3): future_time when a sensor's own `t` is further ahead of the
 * gateway's clock than `max_future_s` allows; duplicate_time when a gateway-timed reading has the
 * same `t` and the same value as the sensor's previous one (the same message published again
 * under another packet id). Two values in one millisecond are a burst, not a duplicate; and a
 * sensor-timed reading with the time of one already stored is not stored at all (the store's
 * de-duplication on sensor and time, counted as duplicates), so there is nothing to flag.
 * A sensor's own clock going back (a reset RTC, a replay of old readings) has no flag bit: it is
 * reported as event sensor.time_backwards at most once an hour per sensor (counter guard_time_backwards counts the reports).
 */
export class TimeCheck implements GuardCheck {
  readonly name = 'time';
  private readonly last = new BoundedMap<{ ts: number; value: number }>(MAX_TRACKED_SENSORS);
  private readonly lastSensorTs = new BoundedMap<number>(MAX_TRACKED_SENSORS);
  private readonly reportedBack = new BoundedMap<number>(1000);

  constructor(
    private readonly maxFutureMs: number,
    private readonly reports: GuardReports,
  ) {}

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      if (r.timeSource === 'sensor' && r.ts > b.now + this.maxFutureMs) b.flags[i]! |= READING_FLAGS.future_time;
      const key = b.keys[i]!;
      if (r.timeSource === 'sensor') {
        this.sensorClock(key, r.sensor, r.ts, b.now);
        return;
      }
      const last = this.last.get(key);
      if (last && last.ts === r.ts && last.value === r.value) b.flags[i]! |= READING_FLAGS.duplicate_time;
      else this.last.set(key, { ts: r.ts, value: r.value });
    });
  }

  private sensorClock(key: string, sensor: string, ts: number, now: number): void {
    const before = this.lastSensorTs.get(key);
    this.lastSensorTs.set(key, ts);
    if (before === undefined || ts >= before) return;
    const reportedAt = this.reportedBack.get(key);
    if (reportedAt !== undefined && now - reportedAt < 3_600_000) return;
    this.reportedBack.set(key, now);
    this.reports.event({ kind: 'sensor.time_backwards', key: sensor, ts: now, detail: { back_ms: before - ts, t: ts } }, 'guard_time_backwards');
  }
}

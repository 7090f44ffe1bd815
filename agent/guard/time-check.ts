import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, sensorKey, type GuardBatch, type GuardCheck } from './check.js';

/**
 * Flags a reading's time (§12.3): future_time when a sensor's own `t` is further ahead of the
 * gateway's clock than `max_future_s` allows; duplicate_time when a gateway-timed reading has the
 * same `t` and the same value as the sensor's previous one (the same message published again
 * under another packet id). Two values in one millisecond are a burst, not a duplicate; and a
 * sensor-timed reading with the time of one already stored is not stored at all (the store's
 * de-duplication on sensor and time, counted as duplicates), so there is nothing to flag.
 */
export class TimeCheck implements GuardCheck {
  readonly name = 'time';
  private readonly last = new BoundedMap<{ ts: number; value: number }>(MAX_TRACKED_SENSORS);

  constructor(private readonly maxFutureMs: number) {}

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      if (r.timeSource === 'sensor' && r.ts > b.now + this.maxFutureMs) b.flags[i]! |= READING_FLAGS.future_time;
      if (r.timeSource === 'sensor') return;
      const key = sensorKey(b.source, r.sensor);
      const last = this.last.get(key);
      if (last && last.ts === r.ts && last.value === r.value) b.flags[i]! |= READING_FLAGS.duplicate_time;
      else this.last.set(key, { ts: r.ts, value: r.value });
    });
  }
}

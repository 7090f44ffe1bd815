import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, sensorKey, type GuardBatch, type GuardCheck } from './check.js';

/**
 * Flags a reading's time (§12.3): duplicate_time when the sensor's previous reading had the same
 * `t` (a resent or replayed value under another packet id, or a sensor clock stuck), future_time
 * when `t` is further ahead of the gateway's clock than `max_future_s` allows. Readings stamped by
 * the gateway itself are never ahead; several readings of one SenML pack at one time are not
 * duplicates of each other only if they name different sensors, which is what is compared.
 */
export class TimeCheck implements GuardCheck {
  readonly name = 'time';
  private readonly lastTs = new BoundedMap<number>(MAX_TRACKED_SENSORS);

  constructor(private readonly maxFutureMs: number) {}

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      if (r.timeSource === 'sensor' && r.ts > b.now + this.maxFutureMs) b.flags[i]! |= READING_FLAGS.future_time;
      const key = sensorKey(b.source, r.sensor);
      if (this.lastTs.get(key) === r.ts) b.flags[i]! |= READING_FLAGS.duplicate_time;
      this.lastTs.set(key, r.ts);
    });
  }
}

import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, type GuardBatch, type GuardCheck } from './check.js';

interface Run {
  value: number;
  since: number;
  count: number;
}

/**
 * Flags stuck (§12.3 bit 1): the sensor has reported exactly the same value `readings` times in a
 * row over at least `min_s` (a frozen sensor, a dead ADC, a gateway that repeats the last value).
 * Both conditions, so a fast sensor with a coarse resolution is not stuck after a second, and a
 * slow one is not stuck after two readings. Every reading of the run from then on is flagged.
 */
export class StuckCheck implements GuardCheck {
  readonly name = 'stuck';
  private readonly runs = new BoundedMap<Run>(MAX_TRACKED_SENSORS);

  constructor(
    private readonly readings: number,
    private readonly minMs: number,
  ) {}

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      const key = b.keys[i]!;
      const run = this.runs.get(key);
      if (!run || run.value !== r.value) {
        this.runs.set(key, { value: r.value, since: r.ts, count: 1 });
        return;
      }
      run.count++;
      if (run.count >= this.readings && r.ts - run.since >= this.minMs) b.flags[i]! |= READING_FLAGS.stuck;
    });
  }
}

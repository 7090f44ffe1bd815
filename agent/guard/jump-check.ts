import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, sensorKey, type GuardBatch, type GuardCheck } from './check.js';

/** The median of a small array (copied: the ring keeps its order). */
export function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/**
 * Flags jump (§12.3 bit 2): the value is further from the rolling median of the sensor's last
 * `window` readings than `factor` × their median absolute deviation (a robust spread a single
 * spike cannot inflate) and than `min_delta`. Judged once the window is full; a flagged value still
 * enters the window, so a real step change stops being a jump after about half a window.
 */
export class JumpCheck implements GuardCheck {
  readonly name = 'jump';
  private readonly windows = new BoundedMap<number[]>(MAX_TRACKED_SENSORS);

  constructor(
    private readonly window: number,
    private readonly factor: number,
    private readonly minDelta: number,
  ) {}

  inspect(b: GuardBatch): void {
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      const key = sensorKey(b.source, r.sensor);
      let w = this.windows.get(key);
      if (!w) this.windows.set(key, (w = []));
      if (w.length >= this.window) {
        const med = median(w);
        const mad = median(w.map((x) => Math.abs(x - med)));
        const delta = Math.abs(r.value - med);
        // A perfectly flat window (MAD 0) takes any change beyond min_delta as a jump only when min_delta is set.
        if (delta > this.minDelta && delta > this.factor * mad && (mad > 0 || this.minDelta > 0)) b.flags[i]! |= READING_FLAGS.jump;
        w.shift();
      }
      w.push(r.value);
    });
  }
}

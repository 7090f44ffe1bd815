import { READING_FLAGS } from '../identity/batch-v3.js';
import { BoundedMap, MAX_TRACKED_SENSORS, type GuardBatch, type GuardCheck } from './check.js';

/**
 * The median of a small window and its median absolute deviation, from one sorted copy (the ring
 * keeps its order): the deviations from the median are two sorted runs, the values below it read
 * downwards and those from it upwards, merged only up to the middle. One sort per reading instead
 * of two and no second array (the guard stage's dearest check in `npm run bench`'s stages).
 */
export function medianAndMad(xs: readonly number[]): { median: number; mad: number } {
  const s = [...xs].sort((a, b) => a - b);
  const n = s.length;
  const m = n >> 1;
  const med = n % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
  let lo = m - 1; // below the median, read downwards: med - s[lo] grows
  let hi = m; // from the median upwards: s[hi] - med grows
  const want = n % 2 ? m : m - 1; // 0-based rank of the (lower) middle deviation
  let k = 0;
  let prev = 0;
  for (;;) {
    const next = hi < n && (lo < 0 || s[hi]! - med <= med - s[lo]!) ? s[hi++]! - med : med - s[lo--]!;
    if (k === want) {
      if (n % 2) return { median: med, mad: next };
      prev = next;
    } else if (k === want + 1) {
      return { median: med, mad: (prev + next) / 2 };
    }
    k++;
  }
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
      const key = b.keys[i]!;
      let w = this.windows.get(key);
      if (!w) this.windows.set(key, (w = []));
      if (w.length >= this.window) {
        const { median: med, mad } = medianAndMad(w);
        const delta = Math.abs(r.value - med);
        // A perfectly flat window (MAD 0) takes any change beyond min_delta as a jump only when min_delta is set.
        if (delta > this.minDelta && delta > this.factor * mad && (mad > 0 || this.minDelta > 0)) b.flags[i]! |= READING_FLAGS.jump;
        w.shift();
      }
      w.push(r.value);
    });
  }
}

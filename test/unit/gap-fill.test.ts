import { describe, expect, it } from 'vitest';
import { GapFiller } from '../../agent/inference/gap-fill.js';
import type { Row } from '../../agent/inference/model-runner.js';

const T0 = 1_763_000_000_000;
const row = (i: number, v: number, ts = T0 + i * 1000): Row => ({ key: 's', ts, values: [v], ref: i });

describe('gap filling for the models (agent/inference/README.md, "Gaps")', () => {
  it('interpolates the missing rows of a pause, marks the windows that reach over them, and leaves the rows themselves alone', () => {
    const filler = new GapFiller(4);
    const before = Array.from({ length: 12 }, (_, i) => row(i, i));
    expect(filler.fill(before).synthetic.every((s) => !s)).toBe(true);
    // Rows 12, 13 and 14 never came: row 15 arrives 4 s after row 11.
    const after = [row(15, 15), row(16, 16), row(17, 17), row(18, 18), row(19, 19)];
    const copy = structuredClone(after);
    const out = filler.fill(after);
    expect(out.rows.map((r) => [r.ts - T0, r.values[0], r.ref ?? null])).toEqual([
      [12_000, 12, null],
      [13_000, 13, null],
      [14_000, 14, null],
      [15_000, 15, 15],
      [16_000, 16, 16],
      [17_000, 17, 17],
      [18_000, 18, 18],
      [19_000, 19, 19],
    ]);
    expect(out.synthetic).toEqual([true, true, true, false, false, false, false, false]);
    // A window of 4 rows ending at 15, 16 or 17 holds a filled row; the one ending at 18 does not.
    expect(out.windowFilled.filter((_, i) => !out.synthetic[i])).toEqual([true, true, true, false, false]);
    expect(after).toEqual(copy);
  });

  it('fills at most one window, nothing before the cadence is learned, and nothing for a pause under a second', () => {
    const filler = new GapFiller(4);
    expect(filler.fill([row(0, 0), row(1, 1), row(30, 30)]).rows).toHaveLength(3); // cadence not learned yet
    const fast = new GapFiller(4);
    const ms = (i: number) => ({ key: 'f', ts: T0 + i * 10, values: [i] });
    fast.fill(Array.from({ length: 20 }, (_, i) => ms(i)));
    expect(fast.fill([ms(80)]).rows).toHaveLength(1); // 600 ms: 60 intervals, but under a second
    const long = new GapFiller(4);
    long.fill(Array.from({ length: 12 }, (_, i) => row(i, i)));
    expect(long.fill([row(1000, 1000)]).synthetic.filter(Boolean)).toHaveLength(4);
  });
});

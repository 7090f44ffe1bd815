/**
 * The guard's per-reading bookkeeping, made cheaper for issue 13 (the guard was `npm run bench`'s
 * dearest stage): the jump check's median and MAD from one sort must equal the textbook two-sort
 * definition, and the bounded per-sensor maps must still forget a sensor not seen lately first.
 */
import { describe, expect, it } from 'vitest';
import { BoundedMap } from '../../agent/guard/check.js';
import { medianAndMad } from '../../agent/guard/jump-check.js';
import { seededRandom } from '../helpers/seeded.js';

const textbookMedian = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

describe('guard window statistics', () => {
  it('gives the median and the median absolute deviation of any window, odd or even, with ties and outliers', () => {
    const rnd = seededRandom('guard-window-stats');
    for (let t = 0; t < 5000; t++) {
      const n = 1 + Math.floor(rnd.next() * 40);
      // Coarse values give ties; the occasional huge one is the spike the MAD must not follow.
      const xs = Array.from({ length: n }, () => (rnd.next() < 0.05 ? 1e6 * (rnd.next() - 0.5) : Math.round(rnd.next() * 20) / 4));
      const med = textbookMedian(xs);
      expect(medianAndMad(xs)).toEqual({ median: med, mad: textbookMedian(xs.map((x) => Math.abs(x - med))) });
    }
    expect(medianAndMad([3, 3, 3, 3])).toEqual({ median: 3, mad: 0 });
    expect(medianAndMad([1, 2, 3, 4, 100])).toEqual({ median: 3, mad: 1 });
  });

  it('forgets the sensor not seen for longest when full, and keeps one that was looked up', () => {
    const m = new BoundedMap<number>(3);
    m.set('a', 1);
    m.set('b', 2);
    m.set('c', 3);
    expect(m.get('a')).toBe(1); // a seen again: b is now the one not seen for longest
    m.set('d', 4);
    expect([...m.entries()].map(([k]) => k).sort()).toEqual(['a', 'c', 'd']);
    m.set('c', 30); // an update counts as seen
    m.set('e', 5);
    expect(m.has('c')).toBe(true);
    expect(m.size).toBe(3);
    expect(m.get('c')).toBe(30);
  });
});

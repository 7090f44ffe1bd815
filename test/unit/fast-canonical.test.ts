import { describe, expect, it } from 'vitest';
import { canonicalEncode, canonicalEncodeAll, cborgCanonicalEncode } from '../../agent/identity/canonical.js';
import { seededRandom } from '../helpers/seeded.js';

/**
 * The signed bytes of every batch version come from canonicalEncode; its fast path must give
 * exactly cborg's bytes (the reference it replaced), or signatures and hashes change.
 */
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

// Numbers at the edges of each CBOR form: integer widths, float16 normals/subnormals, float32, float64.
const EDGE_NUMBERS = [
  0, -0, 1, -1, 23, 24, -24, -25, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, -(2 ** 32), Number.MAX_SAFE_INTEGER, -Number.MAX_SAFE_INTEGER,
  2 ** 53, -(2 ** 53), 2 ** 64, 1e300, -1e300, 0.5, 0.25, 1.5, -2.5, 65504, 65505, 65520, 2 ** -14, 2 ** -24, 3 * 2 ** -24, 2 ** -25, 2 ** -149,
  5e-324, 0.1, 1 / 3, 3.4028234663852886e38, 3.4028235677973366e38, 1.401298464324817e-45, 100000.5, 1e-7, Infinity, -Infinity, NaN,
];
const EDGE_STRINGS = ['', 'a', 'src', 'bench/s0', 'x'.repeat(23), 'y'.repeat(24), 'z'.repeat(256), 'über', '日本語', '😀', 'a\u0000b', '\ud800', 'lone\udfffend'];

describe('canonical encoding (RFC 8949 §4.2.1) has cborg’s bytes', () => {
  it('for edge numbers and strings alone and as map keys and values', () => {
    for (const v of [...EDGE_NUMBERS, ...EDGE_STRINGS, true, false, null, new Uint8Array([1, 2, 3]), Buffer.from('ab'), new Uint8Array(300)]) {
      expect(hex(canonicalEncode(v)), `value ${String(v)}`).toBe(hex(cborgCanonicalEncode(v)));
      const asMap = { [typeof v === 'string' ? v : 'k']: v, b: v, aa: [v, v] };
      expect(hex(canonicalEncode(asMap)), `map with ${String(v)}`).toBe(hex(cborgCanonicalEncode(asMap)));
    }
  });

  it('for random readings, verdicts and nested values (seeded)', () => {
    const rnd = seededRandom('fast-canonical');
    const pick = <T,>(xs: readonly T[]): T => xs[rnd.int(0, xs.length - 1)]!;
    const num = (): number => {
      switch (rnd.int(0, 4)) {
        case 0: return pick(EDGE_NUMBERS);
        case 1: return rnd.int(-1_000_000, 1_000_000);
        case 2: return (rnd.next() - 0.5) * 10 ** rnd.int(-30, 30);
        case 3: return rnd.int(-4000, 4000) / 4;
        default: return Math.fround((rnd.next() - 0.5) * 1000);
      }
    };
    const str = () => (rnd.next() < 0.3 ? pick(EDGE_STRINGS) : Array.from({ length: rnd.int(1, 40) }, () => String.fromCodePoint(pick([0x61, 0x2f, 0x7a, 0xe9, 0x65e5, 0x1f600, rnd.int(32, 0x2fff)]))).join(''));
    const value = (depth: number): unknown => {
      const k = rnd.int(0, depth > 3 ? 4 : 7);
      if (k <= 1) return num();
      if (k === 2) return str();
      if (k === 3) return pick([true, false, null]);
      if (k === 4) return Buffer.from(Array.from({ length: rnd.int(0, 40) }, () => rnd.int(0, 255)));
      if (k === 5) return Array.from({ length: rnd.int(0, 5) }, () => value(depth + 1));
      return Object.fromEntries(Array.from({ length: rnd.int(0, 6) }, () => [str(), value(depth + 1)]));
    };
    const reading = () => {
      const r: Record<string, unknown> = { i: rnd.int(1, 2 ** 40), b: rnd.int(0, 9), s: str(), t: 1_763_000_000_000 + rnd.int(0, 1e9), q: rnd.int(0, 2), v: num(), src: pick(['mqtt', 'coap', 'serial']) };
      if (rnd.next() < 0.3) r.u = pick(['°C', 'kPa', 'm/s']);
      if (rnd.next() < 0.3) r.n = rnd.int(0, 2 ** 32);
      return r;
    };
    const verdict = () => ({ i: rnd.int(1, 1e6), k: str(), m: 0, r: rnd.int(1, 1e6), w: rnd.int(0, 1e12), t: rnd.int(1e12, 2e12), o: { score: num(), recon_error: num() }, s: rnd.next(), v: num(), th: num(), a: rnd.next() < 0.5, c: rnd.next() < 0.1 });
    for (let i = 0; i < 3000; i++) {
      const v = [reading, verdict, () => value(0)][i % 3]!();
      expect(hex(canonicalEncode(v)), `${rnd.describe()}: case ${i} ${JSON.stringify(v)}`).toBe(hex(cborgCanonicalEncode(v)));
    }
    const many = Array.from({ length: 500 }, reading);
    expect(canonicalEncodeAll(many).map(hex), rnd.describe()).toEqual(many.map((r) => hex(cborgCanonicalEncode(r))));
  });

  it('tells apart maps whose key lists join alike (empty key, keys holding NUL)', () => {
    for (const v of [{}, { '': 1 }, { 'a\u0000b': 1, c: 2 }, { a: 1, 'b\u0000c': 2 }, { a: 1, b: 2 }, { '': { '': {} } }]) {
      expect(hex(canonicalEncode(v)), JSON.stringify(v)).toBe(hex(cborgCanonicalEncode(v)));
    }
  });

  it('falls back to cborg for values outside the wire format’s shapes', () => {
    for (const v of [{ a: undefined }, 10n, new Map([['a', 1]]), new Uint16Array([1, 2]), [undefined]]) {
      expect(hex(canonicalEncode(v))).toBe(hex(cborgCanonicalEncode(v)));
    }
  });
});

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CborLimitError, decodeBounded, type CborLimits } from '../../agent/identity/bounded-cbor.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { seeded } from '../helpers/envelope-mutator.js';

const hasNullOrBig = (v: unknown): boolean =>
  v === null || typeof v === 'bigint' || (typeof v === 'object' && !(v instanceof Uint8Array) && Object.values(v as object).some(hasNullOrBig));

/** agent/identity/bounded-cbor.ts through its API: the rules of wire-format.md §2 and the limits of §6.3, checked as it scans. */
const open: CborLimits = { maxBytes: 1 << 20, maxDepth: 8, maxTextBytes: 1024, maxByteStringBytes: 1024, maxLength: 64, maxItems: 10_000 };
const hex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));
const refusal = (h: string, limits = open) => {
  try {
    decodeBounded(hex(h), limits);
  } catch (err) {
    expect(err).toBeInstanceOf(CborLimitError);
    return (err as Error).message;
  }
  return 'accepted';
};

describe('bounded CBOR decoder', () => {
  it('accepts exactly the deterministic encodings of the vectors, with their values', () => {
    const V = JSON.parse(readFileSync(join(import.meta.dirname, '../../docs/wire-format-vectors.json'), 'utf8')) as { numbers: { label: string; value: string; cbor: string }[] };
    for (const n of V.numbers) expect(decodeBounded(hex(n.cbor), open).value, n.label).toBe(n.value === '-0' ? 0 : Number(n.value));
  });

  it('refuses each non-deterministic form of §2 with its reason', () => {
    expect(refusal('1817')).toMatch(/shortest form/); // 23 in two bytes
    expect(refusal('a2616201616102')).toMatch(/not in deterministic order/);
    expect(refusal('a2616101616102')).toMatch(/duplicate map key "a"/);
    expect(refusal('9f00ff')).toMatch(/indefinite length/);
    expect(refusal('c000')).toMatch(/tag 0/);
    expect(refusal('f6')).toMatch(/null/);
    expect(refusal('f7')).toMatch(/undefined/);
    expect(refusal('62c328')).toMatch(/invalid UTF-8/);
    expect(refusal('0000')).toMatch(/1 bytes after the end/);
    expect(refusal('fb3ff8000000000000')).toMatch(/float not in its shortest form/); // 1.5 as float64
    expect(refusal('f93c00')).toMatch(/integral float/); // 1.0
    expect(refusal('1b0020000000000000')).toMatch(/beyond 2\^53 - 1/);
    expect(refusal('3b001fffffffffffff')).toMatch(/beyond -\(2\^53 - 1\)/);
    expect(refusal('a10100')).toMatch(/not a text string/);
  });

  it('checks lengths against their limit and the bytes left before allocating, by path', () => {
    const limits: CborLimits = { ...open, maxLength: 2, lengthByPath: { r: 3 } };
    expect(refusal('83000000', limits)).toMatch(/array of 3 at \(top\), more than the limit of 2/);
    expect(refusal(`a16172${'83000000'}`, limits)).toBe('accepted');
    expect(refusal(`a16172${'84'}00000000`, limits)).toMatch(/array of 4 at r, more than the limit of 3/);
    // 2^32 - 1 items declared in 5 bytes: refused from the header alone.
    expect(refusal('9affffffff', { ...open, maxLength: 2 ** 32 })).toMatch(/cannot fit in the 0 bytes left/);
    expect(refusal('818181818100', { ...open, maxDepth: 4 })).toMatch(/nested deeper than 4/);
    expect(refusal(`78${'ff'}${'61'.repeat(255)}`, { ...open, maxTextBytes: 254 })).toMatch(/text string of 255 bytes/);
    expect(refusal('8400000000', { ...open, maxItems: 3 })).toMatch(/more than 3 items in all/);
  });

  it('keeps a key named __proto__ as an own key, and reports the byte spans of the arrays asked for', () => {
    const bytes = canonicalEncode({ o: JSON.parse('{"__proto__": 1, "a": 2}') as object, r: [{ x: 1 }, 'yz'] });
    const d = decodeBounded(bytes, { ...open, spansOf: ['r'] });
    const o = (d.value as { o: Record<string, number> }).o;
    expect(Object.keys(o)).toEqual(['a', '__proto__']);
    expect(Object.getPrototypeOf(o)).toBe(Object.prototype);
    expect(d.spans.get('r')!.map(([a, b]) => Buffer.from(bytes.subarray(a, b)).toString('hex'))).toEqual([Buffer.from(canonicalEncode({ x: 1 })).toString('hex'), '62797a']);
  });

  it('agrees with decode-and-re-encode (cborg) on 50,000 random and mutated inputs', () => {
    const seed = Number(process.env.FUZZ_SEED ?? 12);
    const rng = seeded(seed);
    const base = canonicalEncode({ a: [1, -2, 1.5, 'é', new Uint8Array(3), true], bb: { c: 65536, d: 3 * 2 ** -24 }, e: -(2 ** 40) });
    for (let k = 0; k < 50_000; k++) {
      const input = Uint8Array.from(base);
      for (let n = 0; n < 1 + Math.floor(rng() * 3); n++) input[Math.floor(rng() * input.length)] = Math.floor(rng() * 256);
      let reference: unknown;
      let referenceOk = true;
      try {
        reference = canonicalDecode(input, 'x');
        // §2 rule 1: null is not a data item of this format; cborg decodes it.
        if (hasNullOrBig(reference)) referenceOk = false;
      } catch {
        referenceOk = false;
      }
      let ours: unknown;
      let oursOk = true;
      try {
        ours = decodeBounded(input, open).value;
      } catch {
        oursOk = false;
      }
      expect(oursOk, `seed ${seed} case ${k}: ${Buffer.from(input).toString('hex')}`).toBe(referenceOk);
      if (oursOk) expect(ours).toEqual(reference);
    }
  });
});

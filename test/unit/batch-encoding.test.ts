import { describe, expect, it } from 'vitest';
import { buildBatch, verifyBatchEnvelope } from '../../agent/identity/batch-format.js';
import { canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import { MAX_READINGS } from '../../agent/identity/wire-limits.js';
import type { StoredReading } from '../../agent/types.js';

describe('batch body encoding reuses the Merkle leaves', () => {
  it('gives exactly the canonical encoding of the body, across every CBOR array header size, with and without drops', () => {
    const id = Identity.generate();
    for (const n of [1, 23, 24, 255, 256, 1000, 65_536]) {
      const readings: StoredReading[] = Array.from({ length: n }, (_, i) => ({
        id: i + 1, sensor: `s${i % 7}`, ts: 1_763_000_000_000 + i, timeSource: 'sensor', value: i / 3, source: 'mqtt', boot: 1, ...(i % 2 ? { seq: i, unit: 'Cel' } : {}),
      }));
      for (const drops of [undefined, [{ s: 'x', n: 3 }]]) {
        const b = buildBatch(id, { seq: 1, prevHash: new Uint8Array(32), bootCounter: 1, clockSynced: true, createdMs: 5, ...(drops ? { drops } : {}) }, readings);
        expect(Buffer.from(b.bodyBytes).equals(Buffer.from(canonicalEncode(b.body))), `n=${n}`).toBe(true);
        // Past the §4.6 limit the bytes are still exact, but no verifier takes them.
        if (n <= MAX_READINGS) expect(verifyBatchEnvelope(b.envelope).body.n).toBe(n);
        else expect(() => verifyBatchEnvelope(b.envelope)).toThrow(/array of 65536 at r, more than the limit of 10000/);
      }
    }
  }, 180_000); // 65,536-reading batches: a minute on a machine loaded by other suites, seconds on a calm one
});

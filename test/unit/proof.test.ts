import { describe, expect, it } from 'vitest';
import { BatchVerificationError } from '../../agent/identity/batch-format.js';
import { buildBatchV3, type BatchContentV3 } from '../../agent/identity/batch-v3.js';
import { Identity } from '../../agent/identity/keys.js';
import { auditPath, leafHash, merkleRoot, rootFromAuditPath } from '../../agent/identity/merkle.js';
import { makeProof, verifyProof, type Proof } from '../../agent/identity/proof.js';
import type { StoredReading } from '../../agent/types.js';

const device = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const head = { seq: 3, prevHash: new Uint8Array(32).fill(1), bootCounter: 1, clockSynced: true, createdMs: 1_763_000_100_000 };
const reading = (id: number): StoredReading => ({ id, boot: 1, sensor: `s${id % 4}`, ts: 1_763_000_000_000 + id, timeSource: 'sensor', value: id / 4, source: 'mqtt' });
const content: BatchContentV3 = {
  readings: Array.from({ length: 11 }, (_, k) => reading(k + 1)),
  verdicts: [{ id: 1, key: 's1', modelId: 'stream-ad', modelSha256: new Uint8Array(32).fill(0xab), windowStart: 1_763_000_000_001, ts: 1_763_000_000_005, readingId: 5, outputs: { error: 9 }, score: 0.97, value: 0.97, threshold: 0.9, alert: true, changed: true }],
  events: [{ id: 1, ts: 1_763_000_000_003, kind: 'model.relearn', key: 's1', detail: { by: 'operator' } }],
};

function reason(fn: () => unknown): string {
  try {
    fn();
    return 'valid';
  } catch (err) {
    if (err instanceof BatchVerificationError) return err.reason;
    throw err;
  }
}

describe('RFC 6962 audit paths', () => {
  it('lead from every leaf to the root for trees of 1 to 33 leaves, and from no other leaf or index', () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = Array.from({ length: n }, (_, k) => Uint8Array.of(k, n));
      const root = merkleRoot(leaves);
      for (let i = 0; i < n; i++) {
        const path = auditPath(leaves, i);
        expect(Buffer.from(rootFromAuditPath(leafHash(leaves[i]!), i, n, path)!)).toEqual(Buffer.from(root));
        const other = rootFromAuditPath(leafHash(leaves[(i + 1) % n]!), i, n, path);
        if (n > 1) expect(other && Buffer.from(other).equals(Buffer.from(root))).toBeFalsy();
      }
    }
  });
});

describe('single-element proofs (docs/wire-format.md §12.8)', () => {
  const batch = buildBatchV3(device, head, content);

  it('prove a reading, a verdict and an event without the rest of the batch', () => {
    const proof = makeProof(batch, 'reading', 6);
    // Only its own leaf travels: no other reading's bytes are in the proof.
    for (const k of [0, 5, 7, 10]) expect(JSON.stringify(proof)).not.toContain(makeProof(batch, 'reading', k).leaf);
    expect(verifyProof(proof, device.publicKey).element).toMatchObject({ i: 7, s: 's3', v: 1.75 });
    expect(verifyProof(makeProof(batch, 'verdict', 0)).element).toMatchObject({ k: 's1', a: true, c: true });
    expect(verifyProof(makeProof(batch, 'event', 0)).element).toMatchObject({ k: 'model.relearn', s: 's1' });
  });

  it('reject a tampered value, index, path, header or device key', () => {
    const good = makeProof(batch, 'reading', 6);
    const altered = (change: (p: Proof) => void) => {
      const p = structuredClone(good);
      change(p);
      return p;
    };
    const other = makeProof(batch, 'reading', 5);
    expect(reason(() => verifyProof(altered((p) => (p.leaf = other.leaf))))).toBe('bad-merkle-root');
    expect(reason(() => verifyProof(altered((p) => (p.index = 5))))).toBe('bad-merkle-root');
    expect(reason(() => verifyProof(altered((p) => (p.path[0] = p.path[1]!))))).toBe('bad-merkle-root');
    expect(reason(() => verifyProof(altered((p) => (p.path = p.path.slice(1)))))).toBe('bad-merkle-root');
    const hdr = Buffer.from(good.hdr, 'hex');
    hdr[hdr.length - 1]! ^= 1;
    expect(reason(() => verifyProof(altered((p) => (p.hdr = hdr.toString('hex')))))).toBe('bad-signature');
    expect(reason(() => verifyProof(good, Identity.generate().publicKey))).toBe('bad-signature');
    expect(reason(() => verifyProof({ ...good, extra: 1 }))).toBe('malformed');
  });

  it('cannot be made from a sealed batch that was not opened', () => {
    const sealed = buildBatchV3(device, head, content, { sealTo: Identity.generate().publicKey });
    const { data: _data, ...closed } = sealed;
    expect(() => makeProof(closed, 'reading', 0)).toThrow(/sealed and was not opened/);
    expect(verifyProof(makeProof(sealed, 'reading', 0)).element).toMatchObject({ i: 1 });
  });
});

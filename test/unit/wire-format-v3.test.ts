import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { verifyAnyBatchEnvelope } from '../../agent/identity/batch-any.js';
import { BatchVerificationError } from '../../agent/identity/batch-format.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { Identity } from '../../agent/identity/keys.js';
import { verifyProof } from '../../agent/identity/proof.js';
import { verifyReceipt } from '../../agent/identity/receipt.js';
import { makeV3Vectors, renderV3Vectors } from '../../scripts/make-v3-vectors.js';

// docs/wire-format.md §12, its vectors (docs/wire-format-v3-vectors.json) and the code must agree;
// hashes, signatures and roots are recomputed here from primitives where that is short.

const docs = new URL('../../docs/', import.meta.url);
const committed = readFileSync(new URL('wire-format-v3-vectors.json', docs), 'utf8');
const V = JSON.parse(committed) as ReturnType<typeof makeV3Vectors>;
const v12 = JSON.parse(readFileSync(new URL('wire-format-vectors.json', docs), 'utf8')) as { keys: { receiver: { seed: string } }; batches: { hash: string }[] };
const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const sha256 = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return sha256(Buffer.concat([Uint8Array.of(0), leaves[0]!]));
  let k = 1;
  while (k << 1 < leaves.length) k <<= 1;
  return sha256(Buffer.concat([Uint8Array.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k))]));
}
const receiver = Identity.fromSeed(bytes(v12.keys.receiver.seed));

describe('wire format version 3 vectors (docs/wire-format-v3-vectors.json)', () => {
  it('are what the generator makes today (npm run vectors)', () => {
    expect(committed).toBe(renderV3Vectors());
  });

  it('chain from the version-2 vectors and from batch to batch', () => {
    expect(V.chainsFrom.hash).toBe(v12.batches[3]!.hash);
    const [b5, ...rest] = V.batches as { header: { prev: string }; hash: string }[];
    expect(b5!.header.prev).toBe(v12.batches[3]!.hash);
    let prev = b5!;
    for (const b of rest) {
      expect(b.header.prev).toBe(prev.hash);
      prev = b;
    }
  });

  it('each batch: hash = sha256(header), the signature verifies over the header, dh and the roots recompute', () => {
    for (const b of V.batches as { name: string; headerCbor: string; dataCbor: string; hash: string; signature: string; header: Record<string, string> }[]) {
      const hdr = bytes(b.headerCbor);
      expect(hexOf(sha256(hdr)), b.name).toBe(b.hash);
      expect(nacl.sign.detached.verify(hdr, bytes(b.signature), bytes(b.header.dev!)), b.name).toBe(true);
      const data = bytes(b.dataCbor);
      expect(hexOf(sha256(data)), b.name).toBe(b.header.dh);
      const d = canonicalDecode(data, 'data') as Record<string, unknown[]>;
      expect(hexOf(mth(d.r!.map((x) => canonicalEncode(x)))), b.name).toBe(b.header.root);
      expect(hexOf(mth(d.vd!.map((x) => canonicalEncode(x)))), b.name).toBe(b.header.vroot);
      expect(hexOf(mth(d.ev!.map((x) => canonicalEncode(x)))), b.name).toBe(b.header.eroot);
      const verified = verifyAnyBatchEnvelope(bytes((b as unknown as { envelope: string }).envelope), { openWith: receiver.boxSecretKey() });
      expect(verified.version).toBe(3);
    }
  });

  it('the sealed batch opens with the receiver key to exactly its data bytes, and a relay sees no sensor id', () => {
    const b7 = V.batches[2] as { envelope: string; dataCbor: string; header: { enc: { epk: string; nonce: string } } };
    const env = canonicalDecode(bytes(b7.envelope), 'env') as { sealed: Uint8Array };
    const opened = nacl.box.open(env.sealed, bytes(b7.header.enc.nonce), bytes(b7.header.enc.epk), receiver.boxSecretKey());
    expect(opened && hexOf(opened)).toBe(b7.dataCbor);
    expect(Buffer.from(bytes(b7.envelope)).includes(Buffer.from('pump1/temp'))).toBe(false);
    expect(verifyAnyBatchEnvelope(bytes(b7.envelope)).opened).toBe(false);
  });

  it('every negative envelope fails with its reason', () => {
    for (const n of V.negative) {
      let reason = 'valid';
      try {
        verifyAnyBatchEnvelope(bytes(n.envelope));
      } catch (err) {
        if (!(err instanceof BatchVerificationError)) throw err;
        reason = err.reason;
      }
      expect(reason, n.name).toBe(n.reason);
    }
  });

  it('the proofs verify offline and the receipt verifies as receipt/2 with the CID', () => {
    for (const p of V.proofs) expect(() => verifyProof(p)).not.toThrow();
    const b5 = V.batches[0] as { hash: string; cid: string; header: { dev: string } };
    const r = verifyReceipt(bytes(V.receipt.envelope), { receiverKey: receiver.publicKey, device: bytes(b5.header.dev), seq: 5, batchHash: bytes(b5.hash) });
    expect(r).toMatchObject({ fmt: 'edge-agent/receipt/2', cid: b5.cid, dur: 'disk' });
    expect(b5.cid).toMatch(/^bafkrei[a-z2-7]+$/);
  });
});

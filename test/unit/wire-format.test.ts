import { createHash, createPrivateKey, createPublicKey } from 'node:crypto';
import { readFileSync } from 'node:fs';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { BatchVerificationError, verifyBatchEnvelope } from '../../agent/identity/batch-format.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { verifyReceipt } from '../../agent/identity/receipt.js';
import { makeVectors, renderVectors } from '../../scripts/make-test-vectors.js';

// The wire-format document (docs/wire-format.md), its vectors (docs/wire-format-vectors.json) and
// the code must agree. Where possible the checks below recompute from primitives (node:crypto
// sha256, tweetnacl Ed25519, a local base58) instead of calling the code under test.

const docsDir = new URL('../../docs/', import.meta.url);
const committedText = readFileSync(new URL('wire-format-vectors.json', docsDir), 'utf8');
const V = JSON.parse(committedText) as ReturnType<typeof makeVectors>;
const specText = readFileSync(new URL('wire-format.md', docsDir), 'utf8');

const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
const toHex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const sha256 = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};

/** RFC 6962 §2.1 MTH, written from the RFC text, independent of agent/identity/merkle.ts. */
function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256(new Uint8Array(0));
  if (leaves.length === 1) return sha256(Uint8Array.of(0), leaves[0]!);
  let k = 1;
  while (k << 1 < leaves.length) k <<= 1;
  return sha256(Uint8Array.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function base58btc(data: Uint8Array): string {
  const alphabet = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz';
  let n = BigInt('0x' + (toHex(data) || '0'));
  let out = '';
  while (n > 0n) {
    out = alphabet[Number(n % 58n)]! + out;
    n /= 58n;
  }
  for (const b of data) {
    if (b !== 0) break;
    out = '1' + out;
  }
  return out;
}

/** The text between `<!-- NAME:begin ... -->` and `<!-- NAME:end -->`, inside its fenced block. */
function markedBlock(name: string): string[] {
  const m = new RegExp(`<!-- ${name}:begin[^>]*-->\\s*\`\`\`text\\n([\\s\\S]*?)\`\`\`\\s*<!-- ${name}:end -->`).exec(specText);
  if (!m) throw new Error(`block ${name} not found in wire-format.md`);
  return m[1]!.split('\n').filter((l) => l.trim() !== '');
}

describe('wire-format vectors file', () => {
  it('is exactly what scripts/make-test-vectors.ts generates (run npm run vectors after a format change)', () => {
    expect(renderVectors()).toBe(committedText);
    expect(JSON.parse(JSON.stringify(makeVectors()))).toEqual(V);
  });

  it('names the keys consistently: seed -> public key (node:crypto PKCS#8), did:key (local base58btc)', () => {
    for (const k of [V.keys.device, V.keys.receiver]) {
      const der = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), Buffer.from(k.seed, 'hex')]);
      const spki = createPublicKey(createPrivateKey({ key: der, format: 'der', type: 'pkcs8' })).export({ format: 'der', type: 'spki' });
      expect(toHex(spki.subarray(-32))).toBe(k.publicKey);
      expect(createPrivateKey(k.pkcs8Pem).export({ format: 'der', type: 'pkcs8' }).equals(der)).toBe(true);
      expect(k.did).toBe('did:key:z' + base58btc(Uint8Array.of(0xed, 0x01, ...bytes(k.publicKey))));
    }
  });

  it('encodes numbers as §2 says: integers as ints (-0 as 0), other values in the shortest exact float', () => {
    for (const n of V.numbers) {
      const value = Number(n.value);
      expect(toHex(canonicalEncode(value)), n.label).toBe(n.cbor);
      expect(canonicalDecode(bytes(n.cbor), n.label), n.label).toBe(value === 0 ? 0 : value);
    }
  });
});

describe('Merkle vectors, recomputed with node:crypto from RFC 6962', () => {
  it('matches every Merkle-only vector', () => {
    expect(V.merkle.map((m) => m.leaves.length)).toEqual([0, 1, 2, 3, 5]);
    for (const m of V.merkle) {
      const leaves = m.leaves.map(bytes);
      expect(m.leafHashes).toEqual(leaves.map((l) => toHex(sha256(Uint8Array.of(0), l))));
      expect(toHex(mth(leaves))).toBe(m.root);
    }
  });

  it('matches the root and leaf hashes of every batch, and each leaf is a slice of the body bytes', () => {
    for (const b of V.batches) {
      const leaves = b.readings.map((r) => bytes(r.cbor));
      expect(toHex(mth(leaves))).toBe(b.root);
      expect(b.readings.map((r) => r.leafHash)).toEqual(leaves.map((l) => toHex(sha256(Uint8Array.of(0), l))));
      // §3: in a deterministic body the leaves are the array elements, in order and back to back.
      expect(b.bodyCbor).toContain(b.readings.map((r) => r.cbor).join(''));
      expect(toHex(sha256(bytes(b.bodyCbor)))).toBe(b.hash);
    }
  });
});

describe('positive vectors', () => {
  it('verifies every batch with verifyBatchEnvelope and chains batch 3 to 2 to 1', () => {
    const [b1, b2, b3] = V.batches;
    for (const b of V.batches) {
      const v = verifyBatchEnvelope(bytes(b.envelope));
      expect(toHex(v.bodyBytes)).toBe(b.bodyCbor);
      expect(toHex(v.signature)).toBe(b.signature);
      expect(toHex(v.hash)).toBe(b.hash);
      expect(v.body.r).toEqual(b.readings.map((r) => r.wire));
      expect(toHex(v.body.dev)).toBe(V.keys.device.publicKey);
    }
    expect(b1!.header.prev).toBe('00'.repeat(32));
    expect(b2!.header.prev).toBe(b1!.hash);
    expect(b2!.body.t0).toBe(Math.min(...b2!.readings.map((r) => r.wire.t)));
    expect(b2!.body.t1).toBe(Math.max(...b2!.readings.map((r) => r.wire.t)));
    expect(new Set(b2!.readings.map((r) => r.wire.q))).toEqual(new Set([0, 1, 2]));
    expect(b3!.header.prev).toBe(b2!.hash);
  });

  it('batch 3 (version 2) carries verdicts bound to their models, under their own Merkle root (§4.4)', () => {
    const b3 = V.batches[2]! as (typeof V.batches)[number] & { verdicts: { wire: unknown; cbor: string; leafHash: string }[]; vroot: string; models: { id: string; h: string }[] };
    const v = verifyBatchEnvelope(bytes(b3.envelope));
    expect(v.body.fmt).toBe('edge-agent/batch/2');
    expect(v.body.vd).toEqual(b3.verdicts.map((x) => x.wire));
    expect(v.body.m!.map((m) => ({ id: m.id, h: toHex(m.h) }))).toEqual(b3.models);
    for (const x of b3.verdicts) expect(toHex(sha256(Uint8Array.of(0), bytes(x.cbor)))).toBe(x.leafHash);
    // Three leaves: MTH = H(1 || H(1 || l0 || l1) || l2) (RFC 6962 split at 2).
    const [l0, l1, l2] = b3.verdicts.map((x) => bytes(x.leafHash));
    expect(toHex(sha256(Uint8Array.of(1), sha256(Uint8Array.of(1), l0!, l1!), l2!))).toBe(b3.vroot);
    // t0/t1 span the readings and the verdicts' window ends: verdict 3 ends before the readings.
    expect(v.body.t0).toBe(Math.min(...b3.readings.map((r) => r.wire.t), ...v.body.vd!.map((x) => x.t)));
  });

  it('signatures verify with tweetnacl, independently of node:crypto', () => {
    const device = bytes(V.keys.device.publicKey);
    for (const b of V.batches) expect(nacl.sign.detached.verify(bytes(b.bodyCbor), bytes(b.signature), device)).toBe(true);
    expect(nacl.sign.detached.verify(bytes(V.receipt.bodyCbor), bytes(V.receipt.signature), bytes(V.keys.receiver.publicKey))).toBe(true);
    // The envelope is {sig, body} in that order (§5).
    for (const e of [...V.batches, V.receipt]) {
      const body = bytes(e.bodyCbor);
      const head = body.length < 256 ? `58${body.length.toString(16).padStart(2, '0')}` : `59${body.length.toString(16).padStart(4, '0')}`;
      expect(e.envelope).toBe(`a2637369675840${e.signature}64626f6479${head}${e.bodyCbor}`);
    }
  });

  it('verifies the receipt with verifyReceipt, and its base64 form is the envelope', () => {
    const b1 = V.batches[0]!;
    const expectation = { receiverKey: bytes(V.keys.receiver.publicKey), device: bytes(V.keys.device.publicKey), seq: 1, batchHash: bytes(b1.hash) };
    const r = verifyReceipt(bytes(V.receipt.envelope), expectation);
    expect(r).toMatchObject({ fmt: V.receiptFormat, seq: 1, at: V.receipt.fields.at });
    expect(toHex(r.hash)).toBe(V.receipt.fields.hash);
    expect(Buffer.from(V.receipt.base64, 'base64').toString('hex')).toBe(V.receipt.envelope);
  });
});

describe('standalone vectors (issue 12)', () => {
  it('output-named-proto verifies, keeps both outputs (__proto__ included) and matches its leaves and roots', () => {
    const x = (V as unknown as { standalone: (typeof V.batches)[number][] }).standalone.find((b) => b.name === 'output-named-proto')! as (typeof V.batches)[number] & {
      verdicts: { wire: { o: Record<string, number> }; cbor: string }[];
      vroot: string;
    };
    const v = verifyBatchEnvelope(bytes(x.envelope));
    expect(toHex(v.hash)).toBe(x.hash);
    const o = v.body.vd![0]!.o;
    expect(Object.keys(o).sort()).toEqual(['__proto__', 'error']);
    expect(Object.getOwnPropertyDescriptor(o, '__proto__')?.value).toBe(0.25);
    expect(toHex(canonicalEncode(v.body.vd![0]))).toBe(x.verdicts[0]!.cbor);
    expect(toHex(mth([bytes(x.verdicts[0]!.cbor)]))).toBe(x.vroot);
  });
});

describe('negative vectors', () => {
  it('covers every rejection reason of §6.1', () => {
    expect(new Set(V.negative.map((n) => n.reason))).toEqual(
      new Set(['malformed', 'bad-signature', 'bad-count', 'duplicate-reading-id', 'duplicate-verdict-id', 'bad-time-range', 'bad-merkle-root']),
    );
  });

  it.each(V.negative.map((n) => [n.name, n] as const))('%s fails with its stated reason', (_name, n) => {
    let caught: unknown;
    try {
      verifyBatchEnvelope(bytes(n.envelope));
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(BatchVerificationError);
    expect((caught as BatchVerificationError).reason).toBe(n.reason);
  });

  it('S + L passes a lax verifier (tweetnacl) but not RFC 8032 §5.1.7, which is why §5 requires the check', () => {
    const n = V.negative.find((x) => x.name === 'signature-s-not-reduced')!;
    const env = canonicalDecode(bytes(n.envelope), 'envelope') as { body: Uint8Array; sig: Uint8Array };
    expect(toHex(env.body)).toBe(V.batches[0]!.bodyCbor);
    expect(nacl.sign.detached.verify(env.body, env.sig, bytes(V.keys.device.publicKey))).toBe(true);
  });

  it.each(V.negativeReceipts.map((n) => [n.name, n] as const))('receipt %s is refused', (_name, n) => {
    const expectation = { receiverKey: bytes(V.keys.receiver.publicKey), device: bytes(V.keys.device.publicKey), seq: 1, batchHash: bytes(V.batches[0]!.hash) };
    expect(() => verifyReceipt(bytes(n.envelope), expectation)).toThrow(n.error);
  });
});

describe('the worked example in wire-format.md §9.1', () => {
  const example = new Map<string, string>();
  let current = '';
  for (const line of markedBlock('wire-format-example')) {
    const m = /^(\S+)\s+(\S+)$/.exec(line);
    if (m) example.set((current = m[1]!), m[2]!);
    else example.set(current, example.get(current)! + line.trim());
  }

  it('matches batch 1 of the vectors, field by field', () => {
    const b1 = V.batches[0]!;
    expect(b1.readings).toHaveLength(1);
    expect(Object.fromEntries(example)).toEqual({
      'device-seed': V.keys.device.seed,
      'public-key': V.keys.device.publicKey,
      did: V.keys.device.did,
      'reading-cbor': b1.readings[0]!.cbor,
      'leaf-hash': b1.readings[0]!.leafHash,
      'merkle-root': b1.root,
      'body-cbor': b1.bodyCbor,
      'batch-hash': b1.hash,
      signature: b1.signature,
      envelope: b1.envelope,
    });
  });

  it('can be checked by hand: the hashes and signature follow from the hex alone', () => {
    const get = (k: string) => bytes(example.get(k)!);
    expect(sha256(Uint8Array.of(0), get('reading-cbor'))).toEqual(get('leaf-hash'));
    expect(get('merkle-root')).toEqual(get('leaf-hash'));
    expect(sha256(get('body-cbor'))).toEqual(get('batch-hash'));
    expect(nacl.sign.keyPair.fromSeed(get('device-seed')).publicKey).toEqual(get('public-key'));
    expect(nacl.sign.detached.verify(get('body-cbor'), get('signature'), get('public-key'))).toBe(true);
  });

  it('annotated body: the hex of its lines concatenates to body-cbor', () => {
    const hexOnly = markedBlock('wire-format-annotated-body')
      .map((l) => l.replace(/#.*$/, '').replace(/\s+/g, ''))
      .join('');
    expect(hexOnly).toBe(V.batches[0]!.bodyCbor);
  });
});

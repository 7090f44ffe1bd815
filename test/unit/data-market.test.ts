import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { fromV3, verifyAnyBatchEnvelope } from '../../agent/identity/batch-any.js';
import { buildBatch } from '../../agent/identity/batch-format.js';
import { buildBatchV3, type BatchContentV3 } from '../../agent/identity/batch-v3.js';
import { verifyBatchCar } from '../../agent/identity/car-archive.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { BatchProver, ProofUnavailable, proveElement, rebuildSealedData } from '../../agent/identity/element-proof.js';
import { Identity } from '../../agent/identity/keys.js';
import { buildProduct, ProductVerificationError, verifyProduct, type DataProduct } from '../../agent/identity/product.js';
import { makeProof, verifyProof } from '../../agent/identity/proof.js';
import { signReceipt, verifyReceipt } from '../../agent/identity/receipt.js';
import { batchCidText } from '../../agent/identity/cid.js';
import type { StoredReading } from '../../agent/types.js';
import { tempDir } from '../helpers/setup.js';
import { renderProductVectors } from '../../scripts/make-product-vectors.js';

const device = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const network = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 100 + i));
const head = (seq: number) => ({ seq, prevHash: new Uint8Array(32).fill(seq), bootCounter: 1, clockSynced: true, createdMs: 1_763_000_100_000 });
const reading = (id: number): StoredReading => ({ id, boot: 1, sensor: `s${id % 3}`, ts: 1_763_000_000_000 + id * 1000, timeSource: 'sensor', value: id / 4, source: 'mqtt' });
const content = (from: number, n: number): BatchContentV3 => ({ readings: Array.from({ length: n }, (_, k) => reading(from + k)) });

function failure(fn: () => unknown): string {
  try {
    fn();
    return 'valid';
  } catch (err) {
    if (err instanceof ProductVerificationError || err instanceof ProofUnavailable) return err.reason;
    if (err instanceof Error && 'reason' in err) return String((err as { reason: unknown }).reason);
    throw err;
  }
}

describe('proofs need version 3 (docs/wire-format.md §12.8)', () => {
  it('BatchProver gives exactly makeProof\'s proof for every reading of batches of 1 to 33 readings', () => {
    for (let n = 1; n <= 33; n++) {
      const signed = buildBatchV3(device, head(n), content(1, n));
      const prover = new BatchProver(fromV3(signed));
      for (let k = 0; k < n; k++) expect(prover.prove('reading', k + 1)).toEqual(makeProof(signed, 'reading', k));
    }
  });

  it('a reading of a version-1 or version-2 batch gets an error naming batch.format: 3, not a proof', () => {
    const v1 = verifyAnyBatchEnvelope(buildBatch(device, { ...head(1), prevHash: new Uint8Array(32) }, content(1, 4).readings).envelope);
    expect(v1.version).toBe(1);
    expect(() => proveElement(v1, 'reading', 2)).toThrow(/version-1 batch.*batch\.format: 3/);
    expect(failure(() => proveElement(v1, 'reading', 2))).toBe('needs-version-3');
  });

  it("a sealed batch is proven from the device's own rows, and rows changed since it was signed are refused", () => {
    const signed = buildBatchV3(device, head(2), content(1, 9), { sealTo: network.publicKey });
    const relayView = verifyAnyBatchEnvelope(signed.envelope);
    expect(relayView.opened).toBe(false);
    const data = rebuildSealedData(device, relayView.v3!, content(1, 9));
    const proof = proveElement(relayView, 'reading', 5, data);
    expect(verifyProof(proof, device.publicKey).element).toMatchObject({ i: 5, v: 1.25 });
    // Equal to what the recipient gets by opening the box.
    const opened = fromV3(buildBatchV3(device, head(2), content(1, 9), { sealTo: network.publicKey }));
    expect(proveElement(verifyAnyBatchEnvelope(signed.envelope, { openWith: network.boxSecretKey() }), 'reading', 5)).toEqual(proof);
    expect(opened.sealed).toBe(true);
    const edited = content(1, 9);
    edited.readings[3] = { ...edited.readings[3]!, value: 99 };
    expect(failure(() => rebuildSealedData(device, relayView.v3!, edited))).toBe('store-mismatch');
  });
});

describe('data products (docs/wire-format.md §12.14)', () => {
  const b1 = fromV3(buildBatchV3(device, head(1), content(1, 10)));
  const b2 = fromV3(buildBatchV3(device, head(2), content(11, 10)));
  const mine = (b: typeof b1) => b.body.r.filter((r) => r.s === 's1').map((r) => ({ seq: b.body.seq, proof: proveElement(b, 'reading', r.i) }));
  const items = [...mine(b1), ...mine(b2)];
  const from = 1_763_000_000_000;
  const to = from + 100_000;
  const product = buildProduct(device, 's1', from, to, items, 1_763_000_200_000);
  const copy = (): DataProduct => JSON.parse(JSON.stringify(product)) as DataProduct;

  it('verifies without the rest of the batches, against the named or given device key', () => {
    expect(verifyProduct(copy(), device.publicKey)).toMatchObject({ sensor: 's1', readings: items.length, batches: 2 });
    expect(failure(() => verifyProduct(copy(), network.publicKey))).toBe('bad-signature');
  });

  it('fails when a reading is left out, changed, duplicated or of another sensor, or the manifest is edited or re-signed', () => {
    const removed = copy();
    removed.readings.splice(2, 1);
    expect(failure(() => verifyProduct(removed))).toBe('incomplete');

    const doubled = copy();
    doubled.readings[2] = doubled.readings[1]!;
    expect(failure(() => verifyProduct(doubled))).toBe('incomplete');

    const changed = copy();
    const leaf = canonicalDecode(new Uint8Array(Buffer.from(changed.readings[0]!.leaf, 'hex')), 'leaf') as Record<string, unknown>;
    changed.readings[0]!.leaf = Buffer.from(canonicalEncode({ ...leaf, v: 7 })).toString('hex');
    expect(failure(() => verifyProduct(changed))).toBe('bad-merkle-root');

    // A manifest that leaves a reading out too must be signed again, which only the device can do.
    const manifest = canonicalDecode(new Uint8Array(Buffer.from(product.manifest, 'hex')), 'manifest') as { items: number[][] };
    const shorter = copy();
    shorter.readings.splice(2, 1);
    shorter.manifest = Buffer.from(canonicalEncode({ ...manifest, items: manifest.items.filter((_, k) => k !== 2) })).toString('hex');
    expect(failure(() => verifyProduct(shorter))).toBe('bad-signature');
    const forged = buildProduct(network, 's1', from, to, items);
    expect(failure(() => verifyProduct({ ...forged, device: device.deviceId }))).toBe('bad-signature');

    // The device's own manifest for another sensor's readings, presented as s1's.
    const s2 = buildProduct(device, 's2', from, to, b1.body.r.filter((r) => r.s === 's2').map((r) => ({ seq: 1, proof: proveElement(b1, 'reading', r.i) })));
    expect(failure(() => verifyProduct({ ...s2, sensor: 's1' }))).toBe('malformed');
    const narrow = buildProduct(device, 's1', from, from + 5_000, items);
    expect(failure(() => verifyProduct(narrow))).toBe('out-of-range');
  });

  it("reports gaps in the sensor's own sequence numbers, when every reading has one", () => {
    expect(verifyProduct(copy()).sensorSeqGaps).toBeNull();
    const numbered = (id: number, n: number): StoredReading => ({ ...reading(id), sensor: 's1', seq: n });
    const b = fromV3(buildBatchV3(device, head(7), { readings: [numbered(1, 5), numbered(2, 6), numbered(3, 9)] }));
    const p = buildProduct(device, 's1', from, to, [1, 2, 3].map((i) => ({ seq: 7, proof: proveElement(b, 'reading', i) })));
    expect(verifyProduct(p).sensorSeqGaps).toBe(2);
  });

  it('rejects malformed products before building anything large', () => {
    expect(failure(() => verifyProduct({ ...copy(), readings: 'x' }))).toBe('malformed');
    expect(failure(() => verifyProduct({ ...copy(), extra: 1 }))).toBe('malformed');
    expect(failure(() => verifyProduct({ ...copy(), manifest: 'zz' }))).toBe('malformed');
  });
});

describe('CAR archives (docs/wire-format.md §12.11)', () => {
  it('refuses a section length that claims more than a batch may have, and a truncated file, with the byte offset', async () => {
    const dir = tempDir('car');
    // A header length of 2^40 (varint), then nothing.
    writeFileSync(join(dir, 'huge.car'), Buffer.from([0x80, 0x80, 0x80, 0x80, 0x80, 0x20]));
    const huge = await verifyBatchCar(join(dir, 'huge.car'));
    expect(huge.problems.join()).toMatch(/header at byte 0 claims \d+ bytes, over the 65536/);
    writeFileSync(join(dir, 'short.car'), Buffer.from([0x30, 0xa2]));
    expect((await verifyBatchCar(join(dir, 'short.car'))).problems.join()).toMatch(/runs past the end of the file/);
  });
});

describe('data product vectors (docs/wire-format-product-vectors.json)', () => {
  const file = join(import.meta.dirname, '../../docs/wire-format-product-vectors.json');
  const vectors = JSON.parse(readFileSync(file, 'utf8')) as {
    device: string;
    batches: { seq: number; cid: string; envelope: string }[];
    product: DataProduct;
    negative: { name: string; reason: string; product: unknown }[];
  };

  it('are what the generator makes, byte for byte', () => {
    expect(readFileSync(file, 'utf8')).toBe(renderProductVectors());
  });

  it('the batches verify, the product verifies, every negative fails with its reason', () => {
    for (const b of vectors.batches) expect(verifyAnyBatchEnvelope(new Uint8Array(Buffer.from(b.envelope, 'hex'))).body.seq).toBe(b.seq);
    expect(verifyProduct(vectors.product).readings).toBe(4);
    for (const n of vectors.negative) expect(failure(() => verifyProduct(n.product)), n.name).toBe(n.reason);
  });
});

describe('receipts of version-3 batches bind dh, ch and the CID (docs/wire-format.md §12.10)', () => {
  const receiver = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 200 - i));
  const sealed = buildBatchV3(device, head(4), content(1, 3), { sealTo: receiver.publicKey });
  const expectation = { receiverKey: receiver.publicKey, device: device.publicKey, seq: 4, batchHash: sealed.hash, envelope: sealed.envelope };
  const fields = { dev: device.publicKey, seq: 4, hash: sealed.hash, at: 1 };
  const right = { dh: sealed.header.dh, ch: sealed.header.ch!, cid: batchCidText(sealed.envelope), dur: 'disk' as const };

  it('accepts the receiver’s receipt/2 for exactly the envelope sent', () => {
    expect(verifyReceipt(signReceipt(receiver, fields, right), expectation).fmt).toBe('edge-agent/receipt/2');
  });

  it('refuses one naming another plaintext, ciphertext or CID, and a receipt/1', () => {
    const other = new Uint8Array(32).fill(7);
    for (const wrong of [{ ...right, dh: other }, { ...right, ch: other }, { ...right, cid: batchCidText(new Uint8Array([1])) }]) {
      expect(() => verifyReceipt(signReceipt(receiver, fields, wrong), expectation)).toThrow(/another data hash, ciphertext hash or CID/);
    }
    expect(() => verifyReceipt(signReceipt(receiver, fields), expectation)).toThrow(/needs an edge-agent\/receipt\/2 receipt/);
  });
});

import { mkdtempSync, statSync, chmodSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nacl from 'tweetnacl';
import { describe, expect, it } from 'vitest';
import { buildBatch, verifyBatchEnvelope, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../../agent/identity/device-id.js';
import { Identity, readKeyFile, verifySignature, writeKeyFile } from '../../agent/identity/keys.js';
import { merkleRoot } from '../../agent/identity/merkle.js';
import type { StoredReading } from '../../agent/types.js';

const tmp = () => mkdtempSync(join(tmpdir(), 'ea-id-'));

describe('device identity', () => {
  it('signs with node:crypto byte-identically to tweetnacl, and tweetnacl verifies it', () => {
    const id = Identity.generate();
    for (const msg of [new Uint8Array(0), new TextEncoder().encode('reading'), new Uint8Array(10_000).fill(7)]) {
      const fast = id.sign(msg);
      expect(Buffer.from(fast).equals(Buffer.from(id.signWithTweetnacl(msg)))).toBe(true);
      expect(nacl.sign.detached.verify(msg, fast, id.publicKey)).toBe(true);
      expect(verifySignature(id.publicKey, msg, fast)).toBe(true);
    }
    const other = Identity.generate();
    expect(verifySignature(other.publicKey, new Uint8Array([1]), id.sign(new Uint8Array([1])))).toBe(false);
  });

  it('derives the same public key as tweetnacl from the seed (node:crypto at start-up)', () => {
    for (const fill of [0, 1, 0x7f, 0xff]) {
      const seed = new Uint8Array(32).fill(fill);
      expect(Buffer.from(Identity.fromSeed(seed).publicKey).equals(Buffer.from(nacl.sign.keyPair.fromSeed(seed).publicKey))).toBe(true);
    }
    const id = Identity.generate();
    expect(Buffer.from(Identity.fromPem(id.toPem()).publicKey).equals(Buffer.from(id.publicKey))).toBe(true);
  });

  it('names the device with a did:key that round-trips to the public key', () => {
    const id = Identity.fromSeed(new Uint8Array(32).fill(1));
    expect(id.deviceId).toMatch(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/); // ed25519 did:keys start with z6Mk
    expect(Buffer.from(publicKeyFromDeviceId(id.deviceId)).equals(Buffer.from(id.publicKey))).toBe(true);
    expect(deviceIdFromPublicKey(publicKeyFromDeviceId(Buffer.from(id.publicKey).toString('hex')))).toBe(id.deviceId);
    expect(() => publicKeyFromDeviceId('did:key:zQ3shokFTS3brHcDQrn82RUDfCZESWL1ZdCEJwekUDPQiYBme')).toThrow(/ed25519/);
  });

  it('writes the key file 0600, refuses to overwrite it without force, and refuses a group-readable one', () => {
    const file = join(tmp(), 'device.key');
    const id = Identity.generate();
    writeKeyFile(file, id, false);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(readKeyFile(file).deviceId).toBe(id.deviceId);
    expect(() => writeKeyFile(file, Identity.generate(), false)).toThrow(/already exists.*--force/);
    expect(readKeyFile(file).deviceId).toBe(id.deviceId);
    writeKeyFile(file, Identity.generate(), true);
    expect(readKeyFile(file).deviceId).not.toBe(id.deviceId);
    chmodSync(file, 0o640);
    expect(() => readKeyFile(file)).toThrow(/mode 640.*chmod 600/);
  });

  it('rejects a key file that is not an ed25519 PEM key, naming the file', () => {
    const file = join(tmp(), 'device.key');
    writeFileSync(file, 'hello', { mode: 0o600 });
    expect(() => readKeyFile(file)).toThrow(new RegExp(`${file}: not a PEM private key`));
  });
});

describe('canonical encoding and Merkle root', () => {
  it('refuses CBOR that is not in deterministic form', () => {
    const good = canonicalEncode({ b: 1, a: 2 });
    expect(canonicalDecode(good, 'x')).toEqual({ a: 2, b: 1 });
    // same map, keys in the wrong order: a2 61 62 01 61 61 02
    expect(() => canonicalDecode(Buffer.from('a2616201616102', 'hex'), 'x')).toThrow(/deterministic/);
    // 1.5 as float64 instead of its shortest form
    expect(() => canonicalDecode(Buffer.from('fb3ff8000000000000', 'hex'), 'x')).toThrow(/deterministic/);
  });

  it('computes RFC 6962 tree hashes', () => {
    expect(Buffer.from(merkleRoot([])).toString('hex')).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    // RFC 6962 reference: the leaf hash of the empty leaf is sha256(0x00).
    expect(Buffer.from(merkleRoot([new Uint8Array(0)])).toString('hex')).toBe('6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d');
    const leaves = [1, 2, 3].map((n) => Uint8Array.of(n));
    expect(merkleRoot(leaves)).not.toEqual(merkleRoot([leaves[1]!, leaves[0]!, leaves[2]!]));
  });
});

describe('signed batches', () => {
  const readings: StoredReading[] = [
    { id: 1, sensor: 'pump/temp', ts: 1_763_000_000_000, timeSource: 'sensor', value: 21.5, unit: 'Cel', source: 'mqtt', boot: 1 },
    { id: 2, sensor: 'pump/rpm', ts: 1_763_000_000_100, timeSource: 'gateway-unsynced', value: 1450, seq: 9, source: 'mqtt', boot: 2 },
  ];

  it('verifies a batch it built, and chains the next one to its hash', () => {
    const id = Identity.generate();
    const b1 = buildBatch(id, { seq: 1, prevHash: ZERO_HASH, bootCounter: 3, clockSynced: false, createdMs: 1 }, readings);
    const v = verifyBatchEnvelope(b1.envelope);
    expect(v.body.n).toBe(2);
    expect(v.body.t0).toBe(1_763_000_000_000);
    expect(v.body.t1).toBe(1_763_000_000_100);
    expect(v.body.sync).toBe(false);
    const b2 = buildBatch(id, { seq: 2, prevHash: b1.hash, bootCounter: 3, clockSynced: true, createdMs: 2 }, [{ ...readings[0]!, id: 3 }]);
    expect(verifyBatchEnvelope(b2.envelope).body.prev).toEqual(b1.hash);
  });

  it('rejects a tampered reading, naming the reason', () => {
    const id = Identity.generate();
    const b = buildBatch(id, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1 }, readings);
    const body = canonicalDecode(b.bodyBytes, 'body') as { r: { v: number }[] };
    body.r[0]!.v = 99;
    const tampered = canonicalEncode({ body: canonicalEncode(body), sig: b.signature });
    expect(() => verifyBatchEnvelope(tampered)).toThrow(expect.objectContaining({ reason: 'bad-signature' }));
  });
});

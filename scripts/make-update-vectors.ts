/**
 * Generates docs/update-vectors.json: signed update bundles of docs/updates.md for fixed keys
 * (publisher seed 71 72 …, device seed 01 02 …, as no other vector file uses them) and each
 * refusal of §3 steps 1-5 with its reason, so an independent implementation can check its decoder,
 * its verification order and its reasons (Ed25519 is deterministic, so the bytes are too).
 *   node dist/scripts/make-update-vectors.js           writes the file
 *   node dist/scripts/make-update-vectors.js --check   exits 1 if the file on disk differs
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hex } from '../agent/identity/batch-format.js';
import { canonicalEncode } from '../agent/identity/canonical.js';
import { Identity } from '../agent/identity/keys.js';
import { signUpdate, UPDATE_FORMAT } from '../agent/identity/update-bundle.js';
import { repoRoot, writeOrCheck } from './make-test-vectors.js';

const seed = (first: number) => Uint8Array.from({ length: 32 }, (_, k) => first + k);

export function makeUpdateVectors() {
  const publisher = Identity.fromSeed(seed(0x71));
  const device = Identity.fromSeed(seed(0x01));
  const other = Identity.fromSeed(seed(0x31));
  const manifest = new TextEncoder().encode('{"format":"edge-agent/models/1","models":[]}\n');
  const file = (p: string, b: Uint8Array) => ({ p, h: new Uint8Array(createHash('sha256').update(b).digest()), n: b.length, b });
  const fields = { id: 'models-7', ver: '7.0', kind: 'models' as const, at: 1_767_225_600_000, files: [file('manifest.json', manifest)] };
  const valid = signUpdate(publisher, fields);
  const byUrl = signUpdate(publisher, {
    ...fields,
    id: 'models-8',
    ver: '8.0',
    to: [device.publicKey],
    files: [{ p: 'manifest.json', h: file('manifest.json', manifest).h, n: manifest.length, u: 'https://updates.example/models-8/manifest.json' }],
  });
  /** A bundle body signed as given, without signUpdate's checks: for the malformed cases. */
  const raw = (body: Record<string, unknown>, signer = publisher) => {
    const upd = canonicalEncode(body);
    return canonicalEncode({ sig: signer.sign(upd), upd });
  };
  const body = { fmt: UPDATE_FORMAT, pub: publisher.publicKey, ...fields };
  const flipped = Uint8Array.from(valid);
  flipped[8]! ^= 0x01;
  const refused = [
    { name: 'bad-signature', reason: 'bad-signature', envelope: flipped },
    { name: 'untrusted-publisher', reason: 'untrusted-publisher', envelope: signUpdate(other, fields) },
    { name: 'not-for-this-device', reason: 'not-for-this-device', envelope: signUpdate(publisher, { ...fields, to: [other.publicKey] }) },
    { name: 'unknown-key', reason: 'malformed', envelope: raw({ ...body, x: 1 }) },
    { name: 'file-in-a-directory', reason: 'malformed', envelope: raw({ ...body, files: [{ ...fields.files[0]!, p: 'a/manifest.json' }] }) },
    { name: 'inline-and-url', reason: 'malformed', envelope: raw({ ...body, files: [{ ...fields.files[0]!, u: 'https://x.example/m' }] }) },
    { name: 'size-not-length', reason: 'malformed', envelope: raw({ ...body, files: [{ ...fields.files[0]!, n: manifest.length + 1 }] }) },
    { name: 'models-without-manifest', reason: 'malformed', envelope: raw({ ...body, files: [file('model.onnx', manifest)] }) },
    { name: 'config-not-edge-agent-yaml', reason: 'malformed', envelope: raw({ ...body, kind: 'config', files: [file('other.yaml', manifest)] }) },
    { name: 'not-deterministic', reason: 'malformed', envelope: Uint8Array.from([0xa2, 0x63, 0x75, 0x70, 0x64, 0x40, 0x63, 0x73, 0x69, 0x67, 0x40]) },
  ];
  return {
    description: 'Test vectors of docs/updates.md (signed update bundles, edge-agent/update/1): verify each with the publisher and device keys below',
    publisher: { seed: hex(seed(0x71)), publicKey: hex(publisher.publicKey), did: publisher.deviceId },
    device: { seed: hex(seed(0x01)), publicKey: hex(device.publicKey), did: device.deviceId },
    valid: [
      { name: 'inline-model-set', id: fields.id, ver: fields.ver, envelope: hex(valid) },
      { name: 'by-url-for-one-device', id: 'models-8', ver: '8.0', envelope: hex(byUrl) },
    ],
    refused: refused.map((r) => ({ name: r.name, reason: r.reason, envelope: hex(r.envelope) })),
    /** Refused before decoding (§3 step 1): any envelope of this many bytes. */
    too_large: { bytes: 40 * 1024 + 1, reason: 'malformed' },
  };
}

export function renderUpdateVectors(): string {
  return JSON.stringify(makeUpdateVectors(), null, 2) + '\n';
}

function main(args: string[]): void {
  writeOrCheck(join(repoRoot(), 'docs', 'update-vectors.json'), renderUpdateVectors(), args.includes('--check'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

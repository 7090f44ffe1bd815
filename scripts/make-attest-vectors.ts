/**
 * Generates firmware-bridge/attest-vectors.json: the ATTEST frame and the attestation message of
 * firmware-bridge/PROTOCOL.md §3.9 for fixed inputs (the sensor key of seed 41 42 … 60, as in
 * docs/wire-format-v3-vectors.json), so a device library can check its digest, message, signature
 * (Ed25519 is deterministic) and frame bytes against them.
 *   node dist/scripts/make-attest-vectors.js           writes the file
 *   node dist/scripts/make-attest-vectors.js --check   exits 1 if the file on disk differs
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hex } from '../agent/identity/batch-format.js';
import { Identity } from '../agent/identity/keys.js';
import { attestationDigest, encodeAttestationMessage } from '../agent/identity/sensor-attestation.js';
import { encodeAttestBody, encodeAttestFrame } from '../agent/sources/serial/attest-frame.js';
import { repoRoot, writeOrCheck } from './make-test-vectors.js';

export function makeAttestVectors() {
  const seed = Uint8Array.from({ length: 32 }, (_, k) => 0x41 + k);
  const sensor = Identity.fromSeed(seed);
  const uid = Uint8Array.from([0x51, 0x4d, 0, 0, 0, 0, 0, 1]);
  const readings = [21.5, 21.75, 22, 22.25].map((v, k) => ({ seq: k, values: [v] }));
  const digest = attestationDigest(readings);
  const fields = { uid, session: 7, sensor: 0, firstSeq: 0, lastSeq: 3, digest };
  const msg = encodeAttestationMessage(fields);
  const sig = sensor.sign(msg);
  const frame = { session: 7, sensor: 0, firstSeq: 0, lastSeq: 3, sig };
  return {
    description: 'Test vectors of firmware-bridge/PROTOCOL.md §3.9 (ATTEST, sensor-signed readings)',
    key: { seed: hex(seed), publicKey: hex(sensor.publicKey) },
    uid: hex(uid),
    readings,
    digest: hex(digest),
    message: hex(msg),
    signature: hex(sig),
    frame: { fields: { ...frame, sig: hex(sig) }, body: hex(encodeAttestBody(frame)), wire: hex(encodeAttestFrame(frame)) },
    malformed: [
      { name: 'short-body', body: hex(encodeAttestBody(frame).subarray(0, 76)) },
      { name: 'last-before-first', body: hex(encodeAttestBody({ ...frame, firstSeq: 4, lastSeq: 3 })) },
    ],
  };
}

export function renderAttestVectors(): string {
  return JSON.stringify(makeAttestVectors(), null, 2) + '\n';
}

function main(args: string[]): void {
  const file = join(repoRoot(), 'firmware-bridge', 'attest-vectors.json');
  const text = renderAttestVectors();
  writeOrCheck(file, text, args.includes('--check'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

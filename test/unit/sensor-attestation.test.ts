import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBatchV3, type BatchAttestation } from '../../agent/identity/batch-v3.js';
import { Identity, verifySignature } from '../../agent/identity/keys.js';
import { ATTEST_TYPE, decodeAttestBody } from '../../agent/sources/serial/attest-frame.js';
import { cobsDecode } from '../../agent/sources/serial/cobs.js';
import { crc32c } from '../../agent/sources/serial/crc32c.js';
import { renderAttestVectors } from '../../scripts/make-attest-vectors.js';
import { attestationDigest, checkAttestationBindings, decodeAttestationMessage, encodeAttestationMessage } from '../../agent/identity/sensor-attestation.js';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/server.js';
import type { StoredReading } from '../../agent/types.js';
import { cli } from '../helpers/cli.js';

// firmware-bridge/PROTOCOL.md §3.9 and docs/wire-format.md §12.7: a sensor board signs its readings;
// the receiver checks that the batch's readings are the ones it signed.

const gateway = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => i + 1));
const sensorKey = Identity.fromSeed(Uint8Array.from({ length: 32 }, (_, i) => 0x41 + i));
const uid = Uint8Array.from([0x51, 0x4d, 0, 0, 0, 0, 0, 1]);
/** f32-exact values, as a board sends them (PROTOCOL.md §2.2). */
const values = [21.5, 21.75, 22, 22.25];
const reading = (k: number, value = values[k]!): StoredReading => ({ id: 100 + k, sensor: 'pump1/temp', ts: 1_763_000_000_000 + k * 1000, timeSource: 'gateway-synced', value, unit: 'Cel', seq: k, source: 'serial', boot: 1 });

function signedByTheSensor(): BatchAttestation {
  const msg = encodeAttestationMessage({ uid, session: 7, sensor: 0, firstSeq: 0, lastSeq: 3, digest: attestationDigest(values.map((v, k) => ({ seq: k, values: [v] }))) });
  return { k: sensorKey.publicKey, msg, sig: sensorKey.sign(msg), r: values.map((_, k) => 100 + k) };
}

const running: RunningReceiver[] = [];
afterEach(async () => {
  await Promise.all(running.splice(0).map((r) => r.close()));
});

async function post(r: RunningReceiver, envelope: Uint8Array) {
  const res = await fetch(`${r.url}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: envelope });
  return { status: res.status, json: (await res.json()) as { status: string; reason?: string; detail?: string } };
}

describe('sensor attestations (PROTOCOL.md §3.9)', () => {
  it('the 61-byte message round-trips, and the digest covers seq, count and every f32 value', () => {
    const att = signedByTheSensor();
    expect(att.msg.length).toBe(61);
    expect(Buffer.from(att.msg.subarray(0, 8)).toString()).toBe('EA-ATT/1');
    expect(decodeAttestationMessage(att.msg)).toMatchObject({ session: 7, sensor: 0, firstSeq: 0, lastSeq: 3 });
    const d = (vs: number[]) => Buffer.from(attestationDigest(vs.map((v, k) => ({ seq: k, values: [v] })))).toString('hex');
    expect(d([21.5, 21.75, 22, 22.25])).not.toBe(d([21.5, 21.75, 22, 22.5]));
    expect(decodeAttestationMessage(new Uint8Array(61))).toBeUndefined();
  });

  it('the receiver accepts readings as the sensor signed them, and refuses a value the gateway changed, though the gateway signed the batch', async () => {
    const r = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: mkdtempSync(join(tmpdir(), 'ea-att-')), logger: pino({ level: 'silent' }) });
    running.push(r);
    const head = { seq: 1, prevHash: new Uint8Array(32), bootCounter: 1, clockSynced: true, createdMs: 1_763_000_100_000 };
    const honest = buildBatchV3(gateway, head, { readings: values.map((_, k) => reading(k)), attestations: [signedByTheSensor()] });
    expect(checkAttestationBindings(honest.data!)).toEqual([]);
    expect((await post(r, honest.envelope)).json.status).toBe('accepted');

    // The gateway (it holds its own key) rewrites reading seq 2 and signs the batch again.
    const altered = buildBatchV3(gateway, { ...head, seq: 2, prevHash: honest.hash }, { readings: values.map((_, k) => reading(k, k === 2 ? 23 : values[k]!)), attestations: [signedByTheSensor()] });
    const refused = await post(r, altered.envelope);
    expect(refused.status).toBe(422);
    expect(refused.json.reason).toBe('bad-attestation');
    expect(refused.json.detail).toMatch(/not what the sensor signed/);

    // Leaving a reading out of the attestation's list is caught too.
    const partial = { ...signedByTheSensor(), r: [100, 101, 103] };
    const gap = buildBatchV3(gateway, { ...head, seq: 2, prevHash: honest.hash }, { readings: values.map((_, k) => reading(k)), attestations: [partial] });
    expect((await post(r, gap.envelope)).json.detail).toMatch(/covers sequence numbers 0\.\.3/);
  });
});

describe('ATTEST frame vectors (firmware-bridge/attest-vectors.json)', () => {
  const file = join(import.meta.dirname, '../../firmware-bridge/attest-vectors.json');
  const v = JSON.parse(readFileSync(file, 'utf8'));
  const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));

  it('are what the generator makes, byte for byte', () => {
    expect(readFileSync(file, 'utf8')).toBe(renderAttestVectors());
  });

  it('the wire bytes decode (COBS, CRC-32C) to the fields; the message binds the readings and the signature verifies under the sensor key', () => {
    const wire = bytes(v.frame.wire);
    expect(wire[wire.length - 1]).toBe(0);
    const payload = cobsDecode(wire.subarray(0, wire.length - 1))!;
    expect([payload[0], payload[1]]).toEqual([2, ATTEST_TYPE]);
    expect(new DataView(payload.buffer, payload.byteOffset).getUint32(payload.length - 4, true)).toBe(crc32c(payload, 0, payload.length - 4));
    const frame = decodeAttestBody(payload.subarray(2, payload.length - 4));
    expect(frame).toMatchObject({ session: 7, sensor: 0, firstSeq: 0, lastSeq: 3 });
    expect(Buffer.from(attestationDigest(v.readings)).toString('hex')).toBe(v.digest);
    expect(Buffer.from(decodeAttestationMessage(bytes(v.message))!.digest).toString('hex')).toBe(v.digest);
    expect(verifySignature(bytes(v.key.publicKey), bytes(v.message), (frame as { sig: Uint8Array }).sig)).toBe(true);
    for (const m of v.malformed) expect(decodeAttestBody(bytes(m.body)), m.name).toBe('malformed');
  });
});

describe('edge-agent verify FILE checks attestation bindings too', () => {
  it('exit 0 for the readings the sensor signed, 1 with bad-attestation for a changed one', () => {
    const dir = mkdtempSync(join(tmpdir(), 'ea-att-cli-'));
    const head = { seq: 1, prevHash: new Uint8Array(32), bootCounter: 1, clockSynced: true, createdMs: 1_763_000_100_000 };
    writeFileSync(join(dir, 'ok.cbor'), buildBatchV3(gateway, head, { readings: values.map((_, k) => reading(k)), attestations: [signedByTheSensor()] }).envelope);
    writeFileSync(join(dir, 'bad.cbor'), buildBatchV3(gateway, head, { readings: values.map((_, k) => reading(k, k === 0 ? 0 : values[k]!)), attestations: [signedByTheSensor()] }).envelope);
    expect(cli(['verify', join(dir, 'ok.cbor')]).code).toBe(0);
    const bad = cli(['verify', join(dir, 'bad.cbor'), '--json']);
    expect(bad.code).toBe(1);
    expect(JSON.parse(bad.stdout).reason).toBe('bad-attestation');
  });
});

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildFirmwareTools } from '../helpers/serial.js';
import { Identity } from '../../agent/identity/keys.js';
import { attestationDigest, encodeAttestationMessage } from '../../agent/identity/sensor-attestation.js';
import { decodeAttestBody, encodeAttestFrame } from '../../agent/sources/serial/attest-frame.js';
import { FrameDecoder } from '../../agent/sources/serial/frame-decoder.js';

/**
 * The C++ library's sensor signing (firmware-bridge/firmware/attest.cpp over the vendored Ed25519
 * and SHA-256) against the host's (node:crypto): Ed25519 is deterministic, so the same run signed
 * by both must give the same bytes (PROTOCOL.md §3.9). The tool feeds the run through a Bridge and
 * its Attestor and prints the ATTEST frame the board puts on the line after the last reading.
 */
const ROOT = join(import.meta.dirname, '../..');
const V = JSON.parse(readFileSync(join(ROOT, 'firmware-bridge/attest-vectors.json'), 'utf8')) as {
  key: { seed: string; publicKey: string };
  uid: string;
  readings: { seq: number; values: number[] }[];
  digest: string;
  message: string;
  signature: string;
  frame: { wire: string };
};
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const bytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

function cppAttest(seed: string, uid: string, session: number, sensor: number, readings: { seq: number; values: number[] }[]): Record<string, string> {
  const run = readings.map((r) => `${r.seq}:${r.values.map((v) => v.toPrecision(9)).join(',')}`).join(';');
  const out = execFileSync(join(ROOT, 'firmware-bridge/build/vectors'), ['attest', `seed=${seed} uid=${uid} session=${session} sensor=${sensor} readings=${run}`], { encoding: 'utf8' }).trim();
  return Object.fromEntries(out.split(' ').map((kv) => kv.split('=') as [string, string]));
}

function hostAttest(seed: string, uid: string, session: number, sensor: number, readings: { seq: number; values: number[] }[]) {
  const key = Identity.fromSeed(bytes(seed));
  const digest = attestationDigest(readings);
  const message = encodeAttestationMessage({ uid: bytes(uid), session, sensor, firstSeq: readings[0]!.seq, lastSeq: readings[readings.length - 1]!.seq, digest });
  const signature = key.sign(message);
  const wire = encodeAttestFrame({ session, sensor, firstSeq: readings[0]!.seq, lastSeq: readings[readings.length - 1]!.seq, sig: signature });
  return { public_key: hex(key.publicKey), digest: hex(digest), message: hex(message), signature: hex(signature), wire: hex(wire) };
}

describe('sensor signing in the C++ library (PROTOCOL.md §3.9)', () => {
  beforeAll(() => {
    buildFirmwareTools();
  });

  it('signs the published vector to the same digest, message, signature and ATTEST frame bytes', () => {
    const c = cppAttest(V.key.seed, V.uid, 7, 0, V.readings);
    expect(c).toEqual({ public_key: V.key.publicKey, digest: V.digest, message: V.message, signature: V.signature, wire: V.frame.wire });
  });

  it('agrees with node:crypto on other keys, sessions, sensors, multi-value readings and a 32-reading run', () => {
    const cases = [
      { seed: 'ff'.repeat(32), uid: '0102030405060708', session: 0xfffffffe, sensor: 3, readings: [{ seq: 0, values: [-0.0078125, 1e30, 3.4028234663852886e38] }] },
      { seed: hex(Uint8Array.from({ length: 32 }, (_, k) => (k * 37 + 11) & 0xff)), uid: '514d000000000001', session: 42, sensor: 7, readings: Array.from({ length: 32 }, (_, k) => ({ seq: k, values: [Math.fround(k * 0.1 - 1.5), Math.fround(-k - 0.5)] })) },
    ];
    for (const t of cases) {
      const c = cppAttest(t.seed, t.uid, t.session, t.sensor, t.readings);
      expect(c).toEqual(hostAttest(t.seed, t.uid, t.session, t.sensor, t.readings));
      // And the gateway's decoder reads the board's frame back to the fields it signed.
      const frames = new FrameDecoder().push(bytes(c.wire!));
      expect(frames).toHaveLength(1);
      const f = frames[0] as unknown as { type: string; session: number; sensor: number; firstSeq: number; lastSeq: number; sig: Uint8Array };
      expect(f.type).toBe('attest');
      expect([f.session, f.sensor, f.firstSeq, f.lastSeq, hex(f.sig)]).toEqual([t.session, t.sensor, 0, t.readings.length - 1, c.signature]);
      expect(decodeAttestBody(bytes(c.wire!).subarray(0, 0))).toBe('malformed');
    }
  });
});

import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildBatchV3, type BatchAttestation, type SignedBatchV3 } from '../../agent/identity/batch-v3.js';
import { Identity, readKeyFile } from '../../agent/identity/keys.js';
import { attestationDigest, encodeAttestationMessage } from '../../agent/identity/sensor-attestation.js';
import type { StoredReading } from '../../agent/types.js';
import { cli } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher } from '../helpers/publisher.js';
import { startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

/**
 * The network side knows which sensor keys to trust (docs/wire-format.md §12.7, §12.9 step 11):
 * `edge-agent sensor-key export` on the gateway prints its entry, `edge-agent receive
 * --sensor-keys FILE` refuses an attestation under any other key, so a gateway that changes a
 * value and signs the run again with a key of its own is caught. The batches are made with the
 * host codec under the gateway's real device key and posted to a real receiver process.
 */
const UID = '514d000000000001';
const uid = Uint8Array.from(Buffer.from(UID, 'hex'));

interface Stats {
  readings: number;
  rejected_by_reason: Record<string, number>;
  attested_readings: number;
  unattested_readings: number;
  refused_attestations: number;
}

const reading = (id: number, seq: number, value: number): StoredReading => ({ id, sensor: 'pump1/temp', ts: 1_763_000_000_000 + id * 1000, timeSource: 'gateway-synced', value, unit: 'Cel', seq, source: 'serial', boot: 1 });

/** Four readings (sensor seq 0..3 from reading id `firstId`) and an attestation over them signed by `signer`. */
function run(firstId: number, values: number[], signer: Identity): { readings: StoredReading[]; att: BatchAttestation } {
  const readings = values.map((v, k) => reading(firstId + k, firstId + k, v));
  const digest = attestationDigest(readings.map((r) => ({ seq: r.seq!, values: [r.value] })));
  const msg = encodeAttestationMessage({ uid, session: 1, sensor: 0, firstSeq: readings[0]!.seq!, lastSeq: readings.at(-1)!.seq!, digest });
  return { readings, att: { k: signer.publicKey, msg, sig: signer.sign(msg), r: readings.map((r) => r.id) } };
}

function batch(gateway: Identity, seq: number, prev: Uint8Array, readings: StoredReading[], att?: BatchAttestation): SignedBatchV3 {
  return buildBatchV3(gateway, { seq, prevHash: prev, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_100_000 + seq }, { readings, ...(att ? { attestations: [att] } : {}) });
}

async function post(receiver: RunningReceiver, envelope: Uint8Array): Promise<{ status: number; body: { status: string; reason?: string; detail?: string; device?: string; seq?: number } }> {
  const res = await fetch(`${receiver.baseUrl}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: envelope });
  return { status: res.status, body: (await res.json()) as { status: string; reason?: string; detail?: string; device?: string; seq?: number } };
}

/** A gateway data dir with a serial source and a sensor key made by `sensor-key generate`. */
function provisionedGateway(): { dir: string; gateway: Identity; sensor: Identity; publicKey: string } {
  const dir = tempDir('gateway');
  const init = cli(['init', '--data-dir', dir, '--serial-path', '/dev/ttyUSB-not-opened-here']);
  expect(init.code, init.stderr).toBe(0);
  const keyFile = join(dir, 'board.key');
  const g = cli(['sensor-key', 'generate', '--data-dir', dir, '--source', 'serial', '--device', UID, '--out', keyFile, '--json']);
  expect(g.code, g.stderr).toBe(0);
  const sensor = Identity.fromSeed(Uint8Array.from(Buffer.from(readFileSync(keyFile, 'utf8').trim(), 'hex')));
  return { dir, gateway: readKeyFile(join(dir, 'device.key')), sensor, publicKey: JSON.parse(g.stdout).public_key as string };
}

describe('receiver-side sensor key registry (edge-agent receive --sensor-keys)', () => {
  it('sensor-key export prints the entry; with it a run re-signed by the gateway is refused (unknown-sensor-key) and /v1/stats counts attested, unattested and refused', async () => {
    const gw = provisionedGateway();
    const exported = cli(['sensor-key', 'export', '--data-dir', gw.dir]);
    expect(exported.code, exported.stderr).toBe(0);
    const asJson = JSON.parse(cli(['sensor-key', 'export', '--data-dir', gw.dir, '--json']).stdout) as Record<string, Record<string, string>>;
    expect(asJson).toEqual({ [gw.gateway.deviceId]: { [UID]: gw.publicKey } });
    const registry = join(tempDir('registry'), 'sensor-keys.yaml');
    writeFileSync(registry, exported.stdout); // the YAML exactly as printed, comment line included

    const receiver = await startReceiverProcess(tempDir('receiver'), ['--sensor-keys', registry]);
    const open = await startReceiverProcess(tempDir('receiver-open')); // no registry: origin unchecked
    try {
      const honest = run(1, [21.5, 21.75, 22, 22.25], gw.sensor);
      const b1 = batch(gw.gateway, 1, new Uint8Array(32), honest.readings, honest.att);
      expect((await post(receiver, b1.envelope)).status).toBe(200);

      // The gateway changes one value and signs the run again with a key of its own: the binding holds, the key is not the board's.
      const own = Identity.generate();
      const forged = run(5, [22.5, 22.75, 99, 23.25], own);
      const b2 = batch(gw.gateway, 2, b1.hash, forged.readings, forged.att);
      const refused = await post(receiver, b2.envelope);
      expect(refused.status).toBe(403);
      expect(refused.body.reason).toBe('unknown-sensor-key');
      expect(refused.body).toMatchObject({ device: gw.gateway.deviceId, seq: 2 }); // answered to the verified signer (MQTT too)
      expect(refused.body.detail).toContain(`board ${UID}`);
      expect(refused.body.detail).toContain('not the key registered for this board');

      // A batch without attestations still goes in: its readings are counted unattested.
      const plain = batch(gw.gateway, 2, b1.hash, [reading(5, 4, 22.5), reading(6, 5, 22.75), reading(7, 6, 23)]);
      expect((await post(receiver, plain.envelope)).status).toBe(200);

      const stats = (await receiver.stats()) as unknown as Stats;
      expect(stats).toMatchObject({ readings: 7, attested_readings: 4, unattested_readings: 3, refused_attestations: 1 });
      expect(stats.rejected_by_reason).toEqual({ 'unknown-sensor-key': 1 });

      // Without a registry the same forged batch passes: the origin of `k` is not checked (§12.7).
      expect((await post(open, b1.envelope)).status).toBe(200);
      expect((await post(open, b2.envelope)).status).toBe(200);
      expect((await open.stats()) as unknown as Stats).toMatchObject({ readings: 8, attested_readings: 8, refused_attestations: 0 });
    } finally {
      await receiver.proc.stop('SIGKILL');
      await open.proc.stop('SIGKILL');
    }
  }, 120_000);

  it('a device in the registry with another board, or a device not in it, is refused too', async () => {
    const gw = provisionedGateway();
    const registry = join(tempDir('registry'), 'sensor-keys.json');
    writeFileSync(registry, JSON.stringify({ [gw.gateway.deviceId]: { '514d0000000000ff': gw.publicKey } }));
    const receiver = await startReceiverProcess(tempDir('receiver'), ['--sensor-keys', registry]);
    try {
      const honest = run(1, [1, 2, 3, 4], gw.sensor);
      const wrongBoard = await post(receiver, batch(gw.gateway, 1, new Uint8Array(32), honest.readings, honest.att).envelope);
      expect(wrongBoard.body).toMatchObject({ reason: 'unknown-sensor-key' });
      expect(wrongBoard.body.detail).toContain('no key is registered for this board');
      const stranger = Identity.generate();
      const unknownDevice = await post(receiver, batch(stranger, 1, new Uint8Array(32), honest.readings, honest.att).envelope);
      expect(unknownDevice.body).toMatchObject({ reason: 'unknown-sensor-key' });
      expect(unknownDevice.body.detail).toContain('has no sensor keys in the registry');
      expect(((await receiver.stats()) as unknown as Stats).refused_attestations).toBe(2);
    } finally {
      await receiver.proc.stop('SIGKILL');
    }
  }, 120_000);

  it('over MQTT (real mosquitto) the refusal is answered on the signer\'s reply topic, so the gateway stops resending', async () => {
    const gw = provisionedGateway();
    const registry = join(tempDir('registry'), 'sensor-keys.yaml');
    writeFileSync(registry, cli(['sensor-key', 'export', '--data-dir', gw.dir]).stdout);
    const broker = await startMosquitto();
    const receiver = await startReceiverProcess(tempDir('receiver'), ['--sensor-keys', registry, '--mqtt-url', broker.url]);
    const client = await connectPublisher(broker.url);
    try {
      const replies: { reason?: string; seq?: number }[] = [];
      client.on('message', (_topic, payload) => replies.push(JSON.parse(payload.toString('utf8')) as { reason?: string; seq?: number }));
      await client.subscribeAsync(`edge/${gw.gateway.deviceId}/receipts`, { qos: 1 });
      const forged = run(1, [1, 2, 3, 4], Identity.generate());
      const b1 = batch(gw.gateway, 1, new Uint8Array(32), forged.readings, forged.att);
      // The bridge may subscribe a moment after the HTTP side listens: publish again until answered.
      await waitFor('the refusal on the reply topic', async () => {
        if (replies.length === 0) await client.publishAsync(`edge/${gw.gateway.deviceId}/batches`, Buffer.from(b1.envelope), { qos: 1 });
        return replies.length > 0;
      }, 60_000, 500);
      expect(replies[0]).toMatchObject({ status: 'rejected', reason: 'unknown-sensor-key', seq: 1 });
      expect(((await receiver.stats()) as unknown as Stats).readings).toBe(0);
    } finally {
      await client.endAsync();
      await receiver.proc.stop('SIGKILL');
      await broker.stop();
    }
  }, 150_000);

  it('a bad registry file stops the receiver at start with the file and the key at fault', () => {
    const dir = tempDir('registry');
    const cases: [string, string][] = [
      ['{"did:key:zNotAKey": {}}', 'key "did:key:zNotAKey"'],
      [`{"${Identity.generate().deviceId}": {"xyz": "${'ab'.repeat(32)}"}}`, 'a board uid is 16 hex digits'],
      [`{"${Identity.generate().deviceId}": {"${UID}": "abcd"}}`, 'a sensor public key is 64 hex digits'],
      ['[1, 2]', 'expected a map of device did:key'],
    ];
    for (const [text, expected] of cases) {
      const file = join(dir, 'keys.json');
      writeFileSync(file, text);
      const r = cli(['receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('receiver'), '--sensor-keys', file]);
      expect(r.code, text).not.toBe(0);
      expect(r.stderr, text).toContain(`--sensor-keys ${file}`);
      expect(r.stderr, text).toContain(expected);
      expect(r.stderr, text).not.toMatch(/\n\s+at /); // a named condition, no stack trace
    }
  }, 120_000);
});

import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isV3Envelope, buildBatchV3, verifyBatchV3Envelope } from '../../agent/identity/batch-v3.js';
import { canonicalDecode, canonicalEncode } from '../../agent/identity/canonical.js';
import { batchCidText } from '../../agent/identity/cid.js';
import { Identity, readKeyFile } from '../../agent/identity/keys.js';
import { sha256 } from '../../agent/identity/merkle.js';
import { verifyReceipt } from '../../agent/identity/receipt.js';
import { publicKeyFromDeviceId } from '../../agent/identity/device-id.js';
import { openDatabase } from '../../agent/store/database.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { fetchRetry } from '../helpers/http.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

// Issue 15, "What it must show" 1: sealed batches (docs/wire-format.md §12.6) through a real
// mosquitto and over HTTP, into the real receiver (`edge-agent receive`, its MQTT bridge).

const SECRET = 'secret-pump';
// Never a whole number nor a float32: each value's CBOR is 9 bytes, which random ciphertext does not
// hold by chance (a whole number's 3-byte encoding, 7786 = 19 1e 6a, was found in one once).
const valueOf = (k: number) => 7777.3 + k / 8;

let broker: Broker;
let receiver: LongRunning;
let receiverUrl: string;
let receiverKey: string;
const cleanups: (() => Promise<unknown>)[] = [];

const getJson = async (url: string) => (await fetchRetry(url)).json() as Promise<Record<string, unknown>>;

beforeAll(async () => {
  broker = await startMosquitto();
  cleanups.push(() => broker.stop());
  receiver = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', tempDir('rcv'), '--mqtt-url', broker.url, '--log-level', 'info', '--rate-limit', '0']);
  cleanups.push(() => receiver.stop('SIGKILL'));
  const m = await receiver.waitForOutput(/listening on (http:\/\/127\.0\.0\.1:\d+) public key (did:key:\w+)/);
  receiverUrl = m[1]!;
  receiverKey = m[2]!;
  await receiver.waitForOutput(/receiver subscribed to batches over MQTT/);
}, 60_000);

afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
});

async function sealedAgent(uplinkUrl: string, sensorTopic: string) {
  const dir = tempDir('sealed');
  const init = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--mqtt-topic', `${sensorTopic}/#`, '--uplink-url', uplinkUrl, '--receiver-key', receiverKey, '--encrypt-to', receiverKey, '--no-http', '--json']);
  expect(init.code, init.stderr).toBe(0);
  patchConfig(dir, [
    [['batch', 'max_age_ms'], 100],
    [['batch', 'max_readings'], 40],
    [['uplink', 'retry_initial_ms'], 100],
    [['uplink', 'retry_max_ms'], 1000],
  ]);
  const agent = cliBackground(['run', '--data-dir', dir, '--log-level', 'info']);
  cleanups.push(() => agent.stop('SIGKILL'));
  await agent.waitForReady(30_000);
  return { dir, deviceId: JSON.parse(init.stdout).device_id as string, agent };
}

async function publishSecrets(sensorTopic: string, count: number) {
  const pub = await connectPublisher(broker.url);
  await publishAll(pub, Array.from({ length: count }, (_, k) => ({ topic: `${sensorTopic}/${SECRET}-${k % 3}`, payload: JSON.stringify({ v: valueOf(k), t: 1_765_000_000 + k }) })));
  await pub.endAsync();
}

const readingsOf = async (deviceId: string) => {
  const batches = (await (await fetchRetry(`${receiverUrl}/v1/devices/${deviceId}/batches`)).json()) as { readings: number; sealed: boolean; cid: string; seq: number }[];
  return Array.isArray(batches) ? batches : [];
};

/** The agent's batches and receipts: every receipt is receipt/2 for exactly that envelope's dh, ch and CID (§12.10). */
function checkReceipts(dir: string) {
  const verify = cli(['verify', '--data-dir', dir, '--json']);
  expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  const report = JSON.parse(verify.stdout);
  expect(report.receiptsVerified).toBe(report.batches);
  const db = openDatabase(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    const rows = db.prepare('SELECT b.seq, e.envelope, b.hash, r.envelope AS receipt FROM batches b JOIN batch_envelopes e ON e.seq = b.seq JOIN receipts r ON r.batch_seq = b.seq ORDER BY b.seq').all() as { seq: number; envelope: Buffer; hash: Buffer; receipt: Buffer }[];
    expect(rows.length).toBe(report.batches);
    for (const row of rows) {
      const env = new Uint8Array(row.envelope);
      const batch = verifyBatchV3Envelope(env);
      expect(batch.sealed).toBe(true);
      const body = verifyReceipt(new Uint8Array(row.receipt), { receiverKey: publicKeyFromDeviceId(receiverKey), device: batch.header.dev, seq: row.seq, batchHash: new Uint8Array(row.hash) }) as { fmt: string; dh?: Uint8Array; ch?: Uint8Array; cid?: string };
      expect(body.fmt).toBe('edge-agent/receipt/2');
      expect(Buffer.from(body.dh!)).toEqual(Buffer.from(batch.header.dh));
      const sealed = (canonicalDecode(env, 'envelope') as { sealed: Uint8Array }).sealed;
      expect(Buffer.from(body.ch!)).toEqual(Buffer.from(sha256(sealed)));
      expect(body.cid).toBe(batchCidText(env));
    }
  } finally {
    db.close();
  }
}

/** One ciphertext byte changed, the rest of the envelope (signed header included) as sent. */
function tamperCiphertext(envelope: Uint8Array): Uint8Array {
  const env = canonicalDecode(envelope, 'envelope') as { hdr: Uint8Array; sig: Uint8Array; sealed: Uint8Array };
  const sealed = Uint8Array.from(env.sealed);
  sealed[Math.floor(sealed.length / 2)]! ^= 0x01;
  return canonicalEncode({ hdr: env.hdr, sig: env.sig, sealed });
}

describe('sealed batches end to end (wire-format.md §12.6)', () => {
  it('init --encrypt-to writes uplink.encrypt_to, and refuses a key that is not a did:key or has no uplink', () => {
    const dir = tempDir('enc-init');
    expect(cli(['init', '--data-dir', dir, '--uplink-url', receiverUrl + '/v1/batches', '--encrypt-to', receiverKey, '--no-http']).code).toBe(0);
    expect(readFileSync(join(dir, 'edge-agent.yaml'), 'utf8')).toContain(`encrypt_to: ${receiverKey}`);
    const bad = cli(['init', '--data-dir', tempDir('enc-bad'), '--uplink-url', receiverUrl + '/v1/batches', '--encrypt-to', 'did:key:z6MkNOTAKEY']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--encrypt-to: /);
    expect(cli(['init', '--data-dir', tempDir('enc-nouplink'), '--encrypt-to', receiverKey]).code).toBe(2);
  });

  it('over MQTT: a subscriber on the batch topic sees no sensor id or value, the receiver stores every reading, a changed ciphertext byte is rejected, receipts verify', async () => {
    // The relay's view: a plain subscriber on the batch topic, as any broker user could run it.
    const sniffer: ChildProcess = spawn('stdbuf', ['-oL', 'mosquitto_sub', '-h', '127.0.0.1', '-p', String(broker.port), '-t', 'edge/+/batches', '-q', '1', '-F', '%x', '-d'], { stdio: ['ignore', 'pipe', 'pipe'] });
    cleanups.push(async () => void sniffer.kill('SIGTERM'));
    let sniffed = '';
    sniffer.stdout!.on('data', (d: Buffer) => (sniffed += d.toString()));
    await waitFor('mosquitto_sub subscribed', () => /SUBACK/.test(sniffed));

    const { dir, deviceId } = await sealedAgent(broker.url, 'sensors');
    const total = 120;
    await publishSecrets('sensors', total);
    const batches = await waitFor('the receiver to hold all readings', async () => {
      const b = await readingsOf(deviceId);
      return b.reduce((a, x) => a + x.readings, 0) === total ? b : undefined;
    }, 60_000, 200);
    expect(batches.every((b) => b.sealed && b.cid.startsWith('bafkrei'))).toBe(true);
    await waitFor('every batch delivered with its receipt', () => {
      const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
      return s.batches.pending === 0 && s.batches.receipts === batches.length ? s : undefined;
    }, 30_000, 200);

    // What went over the broker: sealed version-3 envelopes, nothing readable.
    const payloads = await waitFor('the sniffer to have every batch', () => {
      const lines = sniffed.split('\n').filter((l) => /^[0-9a-f]+$/.test(l)).map((l) => new Uint8Array(Buffer.from(l, 'hex')));
      return lines.length >= batches.length ? lines : undefined;
    });
    const secrets = [SECRET, ...Array.from({ length: total }, (_, k) => valueOf(k))].map((x) => Buffer.from(canonicalEncode(x)));
    for (const p of payloads) {
      expect(isV3Envelope(p)).toBe(true);
      // A relay verifies the header, signature, chain fields and ch without the key (§12.9 step 4) ...
      const relayView = verifyBatchV3Envelope(p);
      expect(relayView.sealed).toBe(true);
      expect(relayView.data).toBeUndefined();
      // ... and finds neither a sensor id nor any value's CBOR encoding in the bytes.
      for (const s of secrets) expect(Buffer.from(p).includes(s), `payload of batch ${relayView.header.seq} holds ${s.toString('hex')} at ${Buffer.from(p).indexOf(s)} of ${p.length}; header ${relayView.headerBytes.length}: ${JSON.stringify(relayView.header, (k, v) => (v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v))}`).toBe(false);
    }
    // The same check finds them in the plaintext the receiver opened: it would catch a leak.
    const proof = await getJson(`${receiverUrl}/v1/devices/${deviceId}/readings/1/proof`);
    expect(Buffer.from(proof.leaf as string, 'hex').includes(Buffer.from(SECRET))).toBe(true);

    checkReceipts(dir);

    // A ciphertext byte changed on the way: rejected (ch no longer matches), nothing stored.
    const before = (await getJson(`${receiverUrl}/v1/stats`)) as { readings: number; rejected_by_reason: Record<string, number> };
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clientId: `tamper-${process.pid}` });
    await client.publishAsync(`edge/${deviceId}/batches`, Buffer.from(tamperCiphertext(payloads[0]!)), { qos: 1 });
    // Sealed to a key the receiver does not hold, validly signed by the device: undecryptable.
    const device = readKeyFile(join(dir, 'device.key'));
    const other = buildBatchV3(device, { seq: 10_000, prevHash: new Uint8Array(32), bootCounter: 1, clockSynced: true, createdMs: Date.now() }, {
      readings: [{ id: 1_000_000, sensor: 'x', ts: Date.now(), timeSource: 'gateway-synced', value: 1, source: 'mqtt', boot: 1 }],
    }, { sealTo: Identity.generate().publicKey });
    await client.publishAsync(`edge/${deviceId}/batches`, Buffer.from(other.envelope), { qos: 1 });
    await client.endAsync();
    const after = await waitFor('both rejections counted', async () => {
      const s = (await getJson(`${receiverUrl}/v1/stats`)) as typeof before;
      const r = s.rejected_by_reason;
      return (r['bad-data-hash'] ?? 0) > (before.rejected_by_reason['bad-data-hash'] ?? 0) && (r.undecryptable ?? 0) > (before.rejected_by_reason.undecryptable ?? 0) ? s : undefined;
    });
    expect(after.readings).toBe(before.readings);
  }, 120_000);

  it('over HTTP: every reading stored, receipts verify, a changed ciphertext byte gets 422 bad-data-hash', async () => {
    const { dir, deviceId } = await sealedAgent(`${receiverUrl}/v1/batches`, 'plant');
    const total = 90;
    await publishSecrets('plant', total);
    const batches = await waitFor('the receiver to hold all readings', async () => {
      const b = await readingsOf(deviceId);
      return b.reduce((a, x) => a + x.readings, 0) === total ? b : undefined;
    }, 60_000, 200);
    expect(batches.every((b) => b.sealed)).toBe(true);
    await waitFor('every batch delivered with its receipt', () => {
      const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
      return s.batches.pending === 0 && s.batches.receipts === batches.length ? s : undefined;
    }, 30_000, 200);
    checkReceipts(dir);

    const exported = join(tempDir('exp'), 'b1.cbor');
    expect(cli(['export', '--data-dir', dir, '--seq', '1', '-o', exported]).code).toBe(0);
    const res = await fetchRetry(`${receiverUrl}/v1/batches`, { method: 'POST', headers: { 'content-type': 'application/cbor' }, body: Buffer.from(tamperCiphertext(new Uint8Array(readFileSync(exported)))) });
    expect(res.status).toBe(422);
    expect(((await res.json()) as { reason: string }).reason).toBe('bad-data-hash');
  }, 120_000);
});

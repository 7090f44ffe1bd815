import mqtt from 'mqtt';
import pino from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { buildBatch, hex, ZERO_HASH } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { startReceiver, type RunningReceiver } from '../../agent/receiver/server.js';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
const quietLogger = () => pino({ level: 'silent' });

function batchOf(device: Identity, seq = 1) {
  return buildBatch(device, { seq, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_000 }, [
    { id: seq, sensor: 's', ts: 1_763_000_000_000, timeSource: 'sensor', value: seq, source: 'test', boot: 1 },
  ]);
}

async function receiver(extra: Partial<Parameters<typeof startReceiver>[0]> = {}): Promise<RunningReceiver> {
  const r = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: tempDir('receiver'), logger: quietLogger(), ...extra });
  cleanups.push(() => r.close());
  return r;
}

describe('receiver: identity comes from the signature only', () => {
  it('ignores a device id claimed in headers or the query: the batch is filed under its signer', async () => {
    const r = await receiver();
    const signer = Identity.generate();
    const victim = Identity.generate();
    const res = await fetch(`${r.url}/v1/batches?device=${encodeURIComponent(victim.deviceId)}`, {
      method: 'POST',
      headers: { 'content-type': 'application/cbor', 'x-device-id': victim.deviceId, authorization: `Device ${victim.deviceId}` },
      body: batchOf(signer).envelope,
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ status: 'accepted', device: signer.deviceId });
    expect((await fetch(`${r.url}/v1/devices/${signer.deviceId}/batches`)).status).toBe(200);
    expect((await fetch(`${r.url}/v1/devices/${victim.deviceId}/batches`)).status).toBe(404);
  });

  it('over MQTT: a batch published on another device\'s topic is filed under its signer and answered on the signer\'s topic only', async () => {
    const broker = await startMosquitto();
    cleanups.push(() => broker.stop());
    const r = await receiver({ mqtt: { url: broker.url, topic: 'edge/+/batches', replyTopic: 'edge/{device}/receipts' } });
    const signer = Identity.generate();
    const victim = Identity.generate();
    const client = await mqtt.connectAsync(broker.url, { protocolVersion: 5 });
    cleanups.push(() => client.endAsync());
    const replies: { topic: string; body: { status: string; device: string } }[] = [];
    client.on('message', (topic, payload) => replies.push({ topic, body: JSON.parse(payload.toString()) }));
    await client.subscribeAsync('edge/+/receipts', { qos: 1 });
    const batch = batchOf(signer);
    await client.publishAsync(`edge/${victim.deviceId}/batches`, Buffer.from(batch.envelope), { qos: 1 });
    await waitFor('a reply', () => replies.length > 0, 10_000);
    await new Promise((res) => setTimeout(res, 300));
    expect(replies).toEqual([{ topic: `edge/${signer.deviceId}/receipts`, body: expect.objectContaining({ status: 'accepted', device: signer.deviceId, hash: hex(batch.hash) }) }]);
    expect((await fetch(`${r.url}/v1/devices/${victim.deviceId}/batches`)).status).toBe(404);

    // A real batch with its signature swapped gets no answer at all: nobody may make a device burn it.
    const forged = new Uint8Array(batch.envelope);
    forged[forged.length - 1]! ^= 0xff;
    replies.length = 0;
    await client.publishAsync(`edge/${signer.deviceId}/batches`, Buffer.from(forged), { qos: 1 });
    await waitFor('the rejection counted', async () => ((await (await fetch(`${r.url}/v1/stats`)).json()) as { rejected: number }).rejected === 1, 10_000);
    await new Promise((res) => setTimeout(res, 300));
    expect(replies).toEqual([]);
  });
});

describe('receiver rate limit (token bucket per source address) and the agent honouring Retry-After', () => {
  it('answers 429 with Retry-After beyond the rate; the agent waits as told and loses nothing', async () => {
    const receiverDir = tempDir('receiver');
    const rcv = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', receiverDir, '--rate-limit', '2', '--rate-burst', '2']);
    cleanups.push(() => rcv.stop());
    const baseUrl = (await rcv.waitForOutput(/listening on (http:\/\/\S+)/))[1]!;
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--simulator', '2', '--uplink-url', `${baseUrl}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [
      [['sources', 'simulator', 'interval_ms'], 20],
      [['batch', 'max_age_ms'], 100],
      // 100 readings/s in batches of at most 20: ~5 batches/s whatever the commit cadence
      // (store.commit_interval_ms), more than the receiver's 2/s.
      [['batch', 'max_readings'], 20],
      // Without Retry-After the agent would come back within 10-50 ms, dozens of times a second.
      [['uplink', 'retry_initial_ms'], 10],
      [['uplink', 'retry_max_ms'], 50],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    cleanups.push(() => agent.stop('SIGKILL'));
    const started = Date.now();
    await waitFor('a 429 seen by the agent', () => /429 \(Retry-After 1 s\)/.test(status(dir).uplink.last_error ?? ''), 15_000, 100);
    await new Promise((r) => setTimeout(r, 3000));
    await agent.stop('SIGKILL');
    const seconds = (Date.now() - started) / 1000;
    const stats = (await (await fetch(`${baseUrl}/v1/stats`)).json()) as { rate_limited: number; rejected: number; gaps: number; batches: number };
    expect(stats.rate_limited).toBeGreaterThan(0);
    // Honouring Retry-After: at most about one 429 per second, not one per retry_max_ms.
    expect(stats.rate_limited).toBeLessThanOrEqual(Math.ceil(seconds) + 2);
    expect(stats).toMatchObject({ rejected: 0, gaps: 0 });
    const s = status(dir);
    expect(s.batches.rejected).toBe(0);
    // Everything the agent counts delivered is at the receiver (plus at most the one in flight at the kill).
    expect(stats.batches - s.batches.delivered).toBeGreaterThanOrEqual(0);
    expect(stats.batches - s.batches.delivered).toBeLessThanOrEqual(1);
    expect(s.batches.delivered).toBeGreaterThan(2);
  });
});

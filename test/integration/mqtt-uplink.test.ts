import mqtt, { type MqttClient } from 'mqtt';
import { afterEach, describe, expect, it } from 'vitest';
import { verifyAnyBatchEnvelope as verifyBatchEnvelope } from '../../agent/identity/batch-any.js';
import { hex } from '../../agent/identity/batch-format.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);

/** The network side as a plain MQTT consumer: a persistent QoS 1 session on edge/+/batches that checks every batch. */
async function batchSubscriber(url: string) {
  const arrivals: { topic: string; seq: number; readings: number; values: number[]; prev: string; hash: string }[] = [];
  const client: MqttClient = mqtt.connect(url, { protocolVersion: 5, clean: false, clientId: `net-${process.pid}`, reconnectPeriod: 200, properties: { sessionExpiryInterval: 600 } });
  client.on('message', (topic, payload) => {
    const b = verifyBatchEnvelope(new Uint8Array(payload)); // throws on a bad signature: the test fails loudly
    arrivals.push({ topic, seq: b.body.seq, readings: b.body.r.length, values: b.body.r.map((r) => r.v), prev: hex(b.body.prev), hash: hex(b.hash) });
  });
  await new Promise<void>((resolve, reject) => {
    client.once('connect', () => client.subscribe('edge/+/batches', { qos: 1 }, (err) => (err ? reject(err) : resolve())));
    client.once('error', reject);
  });
  return { arrivals, close: () => client.endAsync() };
}

/** GET as JSON; one retry when a kept-alive socket was closed by the server just as it was reused (undici: "other side closed"). */
async function getJson(url: string): Promise<unknown> {
  try {
    return await (await fetch(url)).json();
  } catch {
    return await (await fetch(url)).json();
  }
}

let cleanups: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  cleanups = [];
});

async function setup(opts: { persistentUpstream?: boolean } = {}) {
  const sensors = await startMosquitto();
  const upstream = await startMosquitto([], { persistent: opts.persistentUpstream ?? false });
  cleanups.push(() => sensors.stop(), () => upstream.stop());
  const dir = tempDir('agent');
  const init = cli(['init', '--data-dir', dir, '--mqtt-url', sensors.url, '--uplink-url', upstream.url, '--json']);
  expect(init.code, init.stderr).toBe(0);
  const deviceId = JSON.parse(init.stdout).device_id as string;
  patchConfig(dir, [
    [['batch', 'max_age_ms'], 100],
    [['batch', 'max_readings'], 50],
    [['uplink', 'retry_initial_ms'], 100],
    [['uplink', 'retry_max_ms'], 1000],
    [['uplink', 'timeout_ms'], 2000],
  ]);
  return { sensors, upstream, dir, deviceId };
}

function runAgent(dir: string): LongRunning {
  const agent = cliBackground(['run', '--data-dir', dir, '--log-level', 'debug']);
  cleanups.push(() => agent.stop('SIGKILL'));
  return agent;
}

async function publishReadings(broker: Broker, from: number, count: number): Promise<void> {
  const pub = await connectPublisher(broker.url);
  await publishAll(pub, Array.from({ length: count }, (_, k) => ({ topic: `sensors/m${(from + k) % 3}`, payload: JSON.stringify({ v: from + k, t: 1_763_200_000 + from + k }) })));
  await pub.endAsync();
}

/** Each seq once (the first arrival), in order, chained, and every reading there exactly once. */
function checkStream(arrivals: { seq: number; values: number[]; prev: string; hash: string }[], total: number) {
  const firsts = new Map<number, (typeof arrivals)[number]>();
  for (const a of arrivals) if (!firsts.has(a.seq)) firsts.set(a.seq, a);
  const seqs = [...firsts.keys()];
  expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
  for (let i = 1; i < seqs.length; i++) expect(firsts.get(seqs[i]!)!.prev).toBe(firsts.get(seqs[i - 1]!)!.hash);
  const values = [...firsts.values()].flatMap((a) => a.values).sort((x, y) => x - y);
  expect(values).toEqual(Array.from({ length: total }, (_, i) => i));
  // A repeat is allowed by QoS 1 only as the same batch again (same hash), never as different content.
  for (const a of arrivals) expect(a.hash).toBe(firsts.get(a.seq)!.hash);
}

describe('MQTT uplink: batches published with QoS 1 to an upstream broker (real mosquitto pair)', () => {
  it('publishes each batch once, in order, on edge/<device>/batches, and marks it delivered on PUBACK', async () => {
    const { sensors, upstream, dir, deviceId } = await setup();
    const net = await batchSubscriber(upstream.url);
    cleanups.push(() => net.close());
    const agent = runAgent(dir);
    await agent.waitForReady();
    await publishReadings(sensors, 0, 600);
    await waitFor('600 readings upstream', () => net.arrivals.reduce((n, a) => n + a.readings, 0) >= 600, 30_000);
    await waitFor('nothing pending', () => status(dir).batches.pending === 0, 10_000, 100);
    expect(new Set(net.arrivals.map((a) => a.topic))).toEqual(new Set([`edge/${deviceId}/batches`]));
    checkStream(net.arrivals, 600);
    expect(net.arrivals.length).toBe(new Set(net.arrivals.map((a) => a.seq)).size); // no restart here: no repeats at all
    expect(status(dir).batches.delivered).toBe(net.arrivals.length);
  });

  it('keeps batches while nobody subscribes (PUBACK 0x10) instead of publishing them into the void', async () => {
    const { sensors, upstream, dir } = await setup();
    const agent = runAgent(dir);
    await agent.waitForReady();
    await publishReadings(sensors, 0, 100);
    await waitFor('a failed delivery', () => /no subscriber for edge\//.test(status(dir).uplink.last_error ?? ''), 10_000, 100);
    expect(status(dir).batches.delivered).toBe(0);
    const net = await batchSubscriber(upstream.url);
    cleanups.push(() => net.close());
    await waitFor('100 readings upstream', () => net.arrivals.reduce((n, a) => n + a.readings, 0) >= 100, 20_000);
    checkStream(net.arrivals, 100);
  });

  it('loses nothing and keeps the order when the upstream broker restarts mid-stream', async () => {
    const { sensors, upstream, dir } = await setup({ persistentUpstream: true });
    const net = await batchSubscriber(upstream.url);
    cleanups.push(() => net.close());
    const agent = runAgent(dir);
    await agent.waitForReady();
    const total = 3000;
    const publishing = (async () => {
      for (let i = 0; i < total; i += 100) {
        await publishReadings(sensors, i, 100);
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    await waitFor('some batches upstream', () => net.arrivals.length >= 3, 20_000);
    await upstream.restart(1500);
    await publishing;
    await waitFor(`${total} readings upstream`, () => new Set(net.arrivals.flatMap((a) => a.values)).size >= total, 40_000, 100).catch((err: Error) => {
      const s = status(dir);
      throw new Error(`${err.message}: ${new Set(net.arrivals.flatMap((a) => a.values)).size} upstream, agent ${JSON.stringify(s.batches)} ${JSON.stringify(s.uplink)} readings ${JSON.stringify(s.readings)}\nagent log tail:\n${agent.output().split('\n').filter((l) => !l.includes('batch cut')).slice(-40).join('\n')}`);
    });
    await waitFor('nothing pending', () => status(dir).batches.pending === 0, 20_000, 100);
    checkStream(net.arrivals, total);
    expect(agent.output()).toMatch(/uplink broker connection closed; reconnecting/);
    expect(agent.output()).toMatch(/"session_present":true,[^\n]*"msg":"uplink connected to broker"/);
  });
});

describe('MQTT uplink with signed receipts from the reference receiver (edge-agent receive --mqtt-url)', () => {
  it('counts a batch delivered only on a verified receipt; the receiver stores all, in order, across an upstream restart', async () => {
    const { sensors, upstream, dir, deviceId } = await setup({ persistentUpstream: true });
    const receiverDir = tempDir('receiver');
    const receiver = cliBackground(['receive', '--listen', '127.0.0.1:0', '--data-dir', receiverDir, '--mqtt-url', upstream.url]);
    cleanups.push(() => receiver.stop());
    const m = await receiver.waitForOutput(/listening on (http:\/\/\S+) public key (did:key:\w+)/);
    const [baseUrl, receiverKey] = [m[1]!, m[2]!];
    await receiver.waitForOutput(/receiver subscribed to batches over MQTT/);
    patchConfig(dir, [[['uplink', 'receiver_key'], receiverKey]]);
    const agent = runAgent(dir);
    await agent.waitForReady();
    const total = 2000;
    const publishing = (async () => {
      for (let i = 0; i < total; i += 100) {
        await publishReadings(sensors, i, 100);
        await new Promise((r) => setTimeout(r, 30));
      }
    })();
    await new Promise((r) => setTimeout(r, 500));
    await upstream.restart(1000);
    await publishing;
    const stats = async () => (await getJson(`${baseUrl}/v1/stats`)) as { readings: number; rejected: number; gaps: number; batches: number };
    await waitFor(`${total} readings at the receiver`, async () => (await stats()).readings >= total, 30_000, 200).catch(async (err: Error) => {
      throw new Error(`${err.message}\nreceiver stats ${JSON.stringify(await stats())}\nagent status ${JSON.stringify(status(dir).batches)} ${JSON.stringify(status(dir).uplink)} readings ${JSON.stringify(status(dir).readings)}\nagent log tail:\n${agent.output().slice(-4000)}\nreceiver log tail:\n${receiver.output().slice(-3000)}`);
    });
    await waitFor('nothing pending', () => status(dir).batches.pending === 0, 20_000, 100);
    const s = status(dir);
    const held = await stats();
    expect(held).toMatchObject({ readings: total, rejected: 0, gaps: 0 });
    expect(held.batches).toBeGreaterThanOrEqual(s.batches.delivered); // and a batch of events may have followed
    // Every delivered batch holds the receiver's signed receipt: `verify` checks them against the key.
    const v = cli(['verify', '--data-dir', dir, '--json']);
    expect(v.code, v.stdout + v.stderr).toBe(0);
    // A batch of events (a heartbeat's, a reconnect's) may be delivered between the status read and `verify`.
    const verified = JSON.parse(v.stdout) as { valid: boolean; receiptsVerified: number; deliveredWithoutReceipt: number };
    expect(verified).toMatchObject({ valid: true, deliveredWithoutReceipt: 0 });
    expect(verified.receiptsVerified).toBeGreaterThanOrEqual(s.batches.delivered);
    expect(verified.receiptsVerified).toBeLessThanOrEqual(status(dir).batches.delivered);
    const list = (await getJson(`${baseUrl}/v1/devices/${deviceId}/batches`)) as { seq: number }[] | { batches: { seq: number }[] };
    const seqs = (Array.isArray(list) ? list : list.batches).map((b) => b.seq);
    // All, in order, with none missing: 1..n, n at least what was delivered at the status read.
    expect(seqs).toEqual(Array.from({ length: seqs.length }, (_, i) => i + 1));
    expect(seqs.length).toBeGreaterThanOrEqual(s.batches.delivered);
  });
});

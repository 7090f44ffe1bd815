/**
 * Uplink benchmark: how fast a backlog of signed batches drains, one batch in flight at a time
 * as the forwarder sends them, over (a) HTTP to the reference receiver, (b) MQTT QoS 1 to a real
 * mosquitto with a persistent subscriber (delivered on PUBACK), (c) MQTT with the reference
 * receiver's MQTT mode answering with signed receipts (delivered on a verified receipt).
 * Runs alternate; prints batches/s and readings/s as min/median/max, a JSON summary last.
 *
 *   node dist/scripts/bench/uplink.js [--batches N] [--readings N] [--runs N]
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { buildBatch, ZERO_HASH, type SignedBatch } from '../../agent/identity/batch-format.js';
import { Identity } from '../../agent/identity/keys.js';
import { startReceiver } from '../../agent/receiver/server.js';
import { HttpUplink } from '../../agent/uplink/http/http-uplink.js';
import { MqttUplink } from '../../agent/uplink/mqtt/mqtt-uplink.js';
import type { Uplink } from '../../agent/uplink/uplink.js';
import { fmt, spread } from './lib/stats.js';
import { intArg } from './lib/args.js';
import { freePort } from './lib/processes.js';

async function startBroker(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const port = await freePort();
  const conf = join(dir, 'mosquitto.conf');
  writeFileSync(conf, `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\npersistence false\n`);
  const proc = spawn('mosquitto', ['-c', conf], { stdio: 'ignore' });
  for (;;) {
    const up = await new Promise<boolean>((r) => {
      const s = connect(port, '127.0.0.1', () => (s.destroy(), r(true)));
      s.on('error', () => r(false));
    });
    if (up) break;
    await new Promise((r) => setTimeout(r, 20));
  }
  return { url: `mqtt://127.0.0.1:${port}`, proc };
}

function makeChain(device: Identity, batches: number, readingsPerBatch: number): SignedBatch[] {
  const out: SignedBatch[] = [];
  let id = 1;
  for (let seq = 1; seq <= batches; seq++) {
    const rs = Array.from({ length: readingsPerBatch }, () => {
      const i = id++;
      return { id: i, sensor: `pump${i % 16}/temp`, ts: 1_763_000_000_000 + i, timeSource: 'sensor' as const, value: 20 + (i % 100) / 10, source: 'mqtt', boot: 1 };
    });
    out.push(buildBatch(device, { seq, prevHash: out[seq - 2]?.hash ?? ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: 1_763_000_000_000 + seq }, rs));
  }
  return out;
}

/** Sends the chain as the forwarder does: in order, the next only after the previous is delivered. */
async function drain(uplink: Uplink, chain: SignedBatch[], device: Identity): Promise<number> {
  const signal = new AbortController().signal;
  const started = performance.now();
  for (const b of chain) {
    const outcome = await uplink.deliver({ seq: b.body.seq, hash: b.hash, device: device.publicKey, envelope: b.envelope }, signal);
    if (outcome.kind !== 'delivered') throw new Error(`batch ${b.body.seq}: ${outcome.kind}: ${outcome.error}`);
  }
  return (performance.now() - started) / 1000;
}

type Mode = 'http' | 'mqtt-puback' | 'mqtt-receipt';

async function oneRun(mode: Mode, batches: number, readingsPerBatch: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ea-bench-uplink-'));
  const quiet = pino({ level: 'silent' });
  const device = Identity.generate();
  const chain = makeChain(device, batches, readingsPerBatch);
  const cleanups: (() => Promise<unknown> | void)[] = [() => rmSync(dir, { recursive: true, force: true })];
  try {
    if (mode === 'http') {
      const receiver = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: join(dir, 'rcv'), logger: quiet, ratePerS: 0 });
      cleanups.unshift(() => receiver.close());
      const uplink = new HttpUplink({ url: `${receiver.url}/v1/batches`, timeoutMs: 10_000, receiverKey: receiver.publicKey });
      cleanups.unshift(() => uplink.close());
      return await drain(uplink, chain, device);
    }
    const broker = await startBroker(dir);
    cleanups.unshift(() => void broker.proc.kill());
    let receiverKey: Uint8Array | undefined;
    if (mode === 'mqtt-receipt') {
      const receiver = await startReceiver({
        host: '127.0.0.1', port: 0, dataDir: join(dir, 'rcv'), logger: quiet, ratePerS: 0,
        mqtt: { url: broker.url, topic: 'edge/+/batches', replyTopic: 'edge/{device}/receipts', clientId: `bench-rcv-${process.pid}` },
      });
      cleanups.unshift(() => receiver.close());
      receiverKey = receiver.publicKey;
    } else {
      const sub = await mqtt.connectAsync(broker.url, { protocolVersion: 5, clean: false, clientId: `bench-sub-${process.pid}`, properties: { sessionExpiryInterval: 600 } });
      await sub.subscribeAsync('edge/+/batches', { qos: 1 });
      cleanups.unshift(() => sub.endAsync());
    }
    const uplink = new MqttUplink(
      {
        url: broker.url, topic: `edge/${device.deviceId}/batches`, replyTopic: `edge/${device.deviceId}/receipts`, clientId: `bench-up-${process.pid}`,
        sessionExpiryS: 600, keepaliveS: 30, timeoutMs: 10_000, reconnectInitialMs: 100, reconnectMaxMs: 1000, ...(receiverKey ? { receiverKey } : {}),
      },
      quiet,
    );
    cleanups.unshift(() => uplink.close());
    return await drain(uplink, chain, device);
  } finally {
    for (const c of cleanups) await c();
  }
}

const batches = intArg('batches', 200);
const readingsPerBatch = intArg('readings', 1000);
const runs = intArg('runs', 3);
const modes: Mode[] = ['http', 'mqtt-puback', 'mqtt-receipt'];
const perS: Record<Mode, number[]> = { 'http': [], 'mqtt-puback': [], 'mqtt-receipt': [] };
const envelopeBytes = makeChain(Identity.generate(), 1, readingsPerBatch)[0]!.envelope.length;
console.log(`uplink bench: ${runs} runs of ${batches} batches x ${readingsPerBatch} readings (${(envelopeBytes / 1024).toFixed(0)} KiB each), one in flight`);
for (let i = 0; i < runs; i++) {
  for (const mode of modes) {
    const seconds = await oneRun(mode, batches, readingsPerBatch);
    perS[mode].push(batches / seconds);
    console.log(`run ${i + 1} ${mode.padEnd(12)} ${(batches / seconds).toFixed(0)} batches/s, ${Math.round((batches * readingsPerBatch) / seconds)} readings/s`);
  }
}
for (const mode of modes) console.log(`${mode.padEnd(12)} ${fmt(spread(perS[mode]), ' batches/s')} (min/median/max)`);
console.log(
  JSON.stringify({
    benchmark: 'uplink-drain',
    batches,
    readings_per_batch: readingsPerBatch,
    envelope_bytes: envelopeBytes,
    runs,
    batches_per_s: Object.fromEntries(modes.map((m) => [m, spread(perS[m])])),
  }),
);
process.exit(0);

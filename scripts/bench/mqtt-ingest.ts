/**
 * MQTT ingest benchmark: QoS 1 messages from an external publisher (mosquitto_pub, C) through a
 * real mosquitto, consumed (a) by a bare mqtt.js subscriber that acknowledges at once and stores
 * nothing (the ceiling), and (b) by the agent's MQTT source committing every reading to SQLite
 * before its PUBACK. Runs alternate; prints min/median/max of both rates and of their ratio, and
 * a JSON summary as the last line.
 *
 *   node dist/scripts/bench/mqtt-ingest.js [--messages N] [--runs N]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mqtt from 'mqtt';
import pino from 'pino';
import { ClockStatus } from '../../agent/clock/clock-status.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { mqttSourceSchema } from '../../agent/sources/mqtt/config.js';
import { MqttSource } from '../../agent/sources/mqtt/mqtt-source.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore } from '../../agent/store/reading-store.js';
import { intArg } from './lib/args.js';
import { freePort } from './lib/processes.js';

interface Consumer {
  received(): number;
  stop(): Promise<void>;
}

/** The agent's MQTT source committing into a real store: PUBACK only after the commit. */
async function agentConsumer(url: string, dir: string): Promise<Consumer> {
  const db = openDatabase(join(dir, 'edge-agent.db'));
  const writer = new GroupCommitWriter(new ReadingStore(db, 1));
  const cfg = mqttSourceSchema.parse({ type: 'mqtt', url, topics: ['sensors/#'], client_id: 'bench-agent' });
  const source = new MqttSource(cfg, { id: 'mqtt', sink: writer, clock: new ClockStatus('always'), log: pino({ level: 'warn' }), resolvePath: (p) => p, cursors: () => new Map() });
  await source.start();
  while (!source.health().connected) await new Promise((r) => setTimeout(r, 20));
  return {
    received: () => source.health().accepted,
    stop: async () => {
      await source.stop();
      db.close();
    },
  };
}

/** The ceiling: a bare mqtt.js QoS 1 subscriber that acknowledges at once and stores nothing. */
async function bareConsumer(url: string): Promise<Consumer> {
  let count = 0;
  const client = mqtt.connect(url, { protocolVersion: 5, clientId: 'bench-bare', properties: { receiveMaximum: 1000 } });
  client.on('message', () => count++);
  await new Promise<void>((resolve) => client.once('connect', () => resolve()));
  await client.subscribeAsync('sensors/#', { qos: 1 });
  return { received: () => count, stop: () => client.endAsync() };
}

async function oneRun(kind: 'agent' | 'bare', messages: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ea-bench-'));
  const port = await freePort();
  writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\npersistence false\n`);
  const broker = spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const url = `mqtt://127.0.0.1:${port}`;
  const consumer = kind === 'agent' ? await agentConsumer(url, dir) : await bareConsumer(url);
  await new Promise((r) => setTimeout(r, 200));

  const lines = Array.from({ length: messages }, (_, i) => `{"v":${i},"t":${1_763_000_000 + i}}`).join('\n') + '\n';
  const started = performance.now();
  const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-M', '1000', '-t', 'sensors/bench', '-l'], { input: lines });
  if (pub.status !== 0) throw new Error(`mosquitto_pub failed: ${pub.stderr}`);
  while (consumer.received() < messages) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  await consumer.stop();
  broker.kill();
  rmSync(dir, { recursive: true, force: true });
  return messages / seconds;
}

function summary(rates: number[]) {
  const r = [...rates].sort((a, b) => a - b);
  return { min: Math.round(r[0]!), median: Math.round(r[Math.floor(r.length / 2)]!), max: Math.round(r[r.length - 1]!) };
}

const messages = intArg('messages', 20_000);
const runs = intArg('runs', 3);
const agentRates: number[] = [];
const bareRates: number[] = [];
const ratios: number[] = [];
for (let i = 0; i < runs; i++) {
  // Interleaved, so both see the same machine load.
  bareRates.push(await oneRun('bare', messages));
  agentRates.push(await oneRun('agent', messages));
  ratios.push(agentRates[i]! / bareRates[i]!);
  console.log(`run ${i + 1}: bare subscriber ${Math.round(bareRates[i]!)}/s, agent committed ${Math.round(agentRates[i]!)}/s, ratio ${ratios[i]!.toFixed(2)}`);
}
const r = [...ratios].sort((x, y) => x - y);
console.log(
  JSON.stringify({
    benchmark: 'mqtt-ingest-qos1',
    messages,
    runs,
    bare_subscriber_per_s: summary(bareRates),
    agent_committed_per_s: summary(agentRates),
    ratio_agent_to_bare: { min: +r[0]!.toFixed(2), median: +r[Math.floor(r.length / 2)]!.toFixed(2), max: +r[r.length - 1]!.toFixed(2) },
  }),
);

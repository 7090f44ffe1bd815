/**
 * MQTT ingest benchmark: QoS 1 messages from an external publisher (mosquitto_pub, C) through
 * a real mosquitto into the agent's MQTT source and store, measured until every reading is
 * committed (the moment its PUBACK may go out). Runs are repeated; prints min/median/max and a
 * JSON summary as the last line.
 *
 *   node dist/scripts/bench/mqtt-ingest.js [--messages N] [--runs N]
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ClockStatus } from '../../agent/clock/clock-status.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { mqttSourceSchema } from '../../agent/sources/mqtt/config.js';
import { MqttSource } from '../../agent/sources/mqtt/mqtt-source.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore } from '../../agent/store/reading-store.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(`--${name}`);
  const v = i === -1 ? fallback : Number(process.argv[i + 1]);
  if (!Number.isInteger(v) || v < 1) throw new Error(`--${name} must be a positive integer`);
  return v;
}

const freePort = () =>
  new Promise<number>((resolve) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

async function oneRun(messages: number): Promise<number> {
  const dir = mkdtempSync(join(tmpdir(), 'ea-bench-'));
  const port = await freePort();
  writeFileSync(join(dir, 'm.conf'), `listener ${port} 127.0.0.1\nallow_anonymous true\nmax_queued_messages 0\npersistence false\n`);
  const broker = spawn('mosquitto', ['-c', join(dir, 'm.conf')], { stdio: 'ignore' });
  await new Promise((r) => setTimeout(r, 300));
  const db = openDatabase(join(dir, 'edge-agent.db'));
  const writer = new GroupCommitWriter(new ReadingStore(db, 1));
  const cfg = mqttSourceSchema.parse({ type: 'mqtt', url: `mqtt://127.0.0.1:${port}`, topics: ['sensors/#'], client_id: 'bench' });
  const source = new MqttSource(cfg, { id: 'mqtt', writer, clock: new ClockStatus('always'), log: pino({ level: 'warn' }), resolvePath: (p) => p });
  await source.start();
  while (!source.health().connected) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 200));

  const lines = Array.from({ length: messages }, (_, i) => `{"v":${i},"t":${1_763_000_000 + i}}`).join('\n') + '\n';
  const started = performance.now();
  const pub = spawnSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-M', '1000', '-t', 'sensors/bench', '-l'], { input: lines });
  if (pub.status !== 0) throw new Error(`mosquitto_pub failed: ${pub.stderr}`);
  while (source.health().accepted < messages) await new Promise((r) => setTimeout(r, 5));
  const seconds = (performance.now() - started) / 1000;
  await source.stop();
  db.close();
  broker.kill();
  rmSync(dir, { recursive: true, force: true });
  return messages / seconds;
}

const messages = arg('messages', 20_000);
const runs = arg('runs', 3);
const rates: number[] = [];
for (let i = 0; i < runs; i++) {
  rates.push(await oneRun(messages));
  console.log(`run ${i + 1}: ${Math.round(rates[i]!)} readings/s committed`);
}
rates.sort((a, b) => a - b);
const summary = {
  benchmark: 'mqtt-ingest-qos1-to-committed',
  messages,
  runs,
  readings_per_s: { min: Math.round(rates[0]!), median: Math.round(rates[Math.floor(rates.length / 2)]!), max: Math.round(rates[rates.length - 1]!) },
};
console.log(JSON.stringify(summary));

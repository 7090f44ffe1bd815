import Database from 'better-sqlite3';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { seededRandom } from '../helpers/seeded.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

const T0 = 1_763_000_000; // seconds: sensor-provided SenML times

function initAgent(broker: Broker, receiver: RunningReceiver): string {
  const dir = tempDir('agent');
  const r = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#',
    '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey]);
  expect(r.code, r.stderr).toBe(0);
  patchConfig(dir, [[['batch', 'max_age_ms'], 300], [['uplink', 'retry_initial_ms'], 100], [['uplink', 'retry_max_ms'], 1000]]);
  return dir;
}

/** Every reading the agent stored, as `sensor@ts=value`, straight from its SQLite file. */
function agentReadings(dir: string): string[] {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return (db.prepare('SELECT sensor, ts, value FROM readings ORDER BY id').all() as { sensor: string; ts: number; value: number }[]).map(
      (r) => `${r.sensor}@${r.ts}=${r.value}`,
    );
  } finally {
    db.close();
  }
}

describe('MQTT QoS 1 in, verified batches out (real mosquitto, agent and receiver processes)', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('10,000 readings from 32 sensors all arrive at the receiver, verified, none duplicated, none missing', async () => {
    receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = initAgent(broker, receiver);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const messages = Array.from({ length: 10_000 }, (_, i) => ({
        topic: `sensors/s${String(i % 32).padStart(2, '0')}`,
        payload: JSON.stringify([{ t: T0 + Math.floor(i / 32), v: i, u: 'Cel' }]),
      }));
      const started = performance.now();
      await publishAll(pub, messages);
      await pub.endAsync();
      const stats = await waitFor('10,000 readings at the receiver', async () => {
        const s = await receiver.stats();
        return s.readings >= 10_000 ? s : undefined;
      }, 120_000);
      const seconds = (performance.now() - started) / 1000;
      console.log(`10,000 QoS 1 messages published to verified-at-receiver in ${seconds.toFixed(1)} s (${Math.round(10_000 / seconds)} readings/s)`);
      expect(stats).toMatchObject({ devices: 1, readings: 10_000, rejected: 0, gaps: 0 });

      const expected = messages.map((m, i) => `${m.topic.slice('sensors/'.length)}@${(T0 + Math.floor(i / 32)) * 1000}=${i}`);
      expect(new Set(agentReadings(dir))).toEqual(new Set(expected));

      expect(await agent.stop()).toBe(0);
      const verify = JSON.parse(cli(['verify', '--data-dir', dir, '--json']).stdout);
      expect(verify).toMatchObject({ valid: true, readings: 10_000, problems: [], deliveredWithoutReceipt: 0 });
      expect(verify.receiptsVerified).toBe(verify.batches);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
    }
  });

  it('SIGKILLed 20 times while readings stream in, restarted each time: every acknowledged reading is delivered exactly once', async () => {
    receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = initAgent(broker, receiver);
    const start = () => cliBackground(['run', '--data-dir', dir]);
    let agent: LongRunning = start();
    const total = 6000;
    const random = seededRandom('mqtt-delivery kill points');
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      // Bare numbers: the gateway stamps the time, so only the redelivery guard can tell a
      // redelivered message (committed, PUBACK lost in the kill) from a new one.
      const messages = Array.from({ length: total }, (_, i) => ({ topic: `sensors/k${i % 8}`, payload: String(i) }));
      let published = 0;
      let killsDone: () => void = () => undefined;
      const allKilled = new Promise<void>((r) => (killsDone = r));
      const publishing = (async () => {
        // Spread over the whole kill sequence, so kills land while messages arrive; the last
        // chunk waits for the last kill, so every kill happens while sensors are publishing.
        for (let i = 0; i < total; i += 100) {
          if (i + 100 >= total) await allKilled;
          await publishAll(pub, messages.slice(i, i + 100));
          published = i + 100;
          await new Promise((r) => setTimeout(r, 450));
        }
      })();
      for (let kill = 0; kill < 20; kill++) {
        await new Promise((r) => setTimeout(r, random.int(100, 500)));
        await agent.stop('SIGKILL');
        agent = start();
        await agent.waitForReady();
      }
      expect(published).toBeLessThan(total); // the last kill came while the sensors were still publishing
      killsDone();
      await publishing;
      await pub.endAsync();
      const stats = await waitFor(`${total} readings at the receiver`, async () => {
        const s = await receiver.stats();
        return s.readings >= total ? s : undefined;
      }, 120_000);
      // A duplicate could only come from the agent: once it has stopped with nothing pending, the receiver's count is final.
      expect(await agent.stop()).toBe(0);
      expect(JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout).batches.pending, random.describe()).toBe(0);
      expect(await receiver.stats(), random.describe()).toMatchObject({ readings: total, rejected: 0, gaps: 0 });
      expect(stats.batches).toBeGreaterThan(1);

      const values = agentReadings(dir).map((r) => Number(r.split('=')[1]));
      expect(values.length, random.describe()).toBe(total);
      expect(new Set(values).size).toBe(total);
      expect(JSON.parse(cli(['verify', '--data-dir', dir, '--json']).stdout)).toMatchObject({ valid: true, readings: total, problems: [] });
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
    }
  }, 240_000); // 20 agent starts on two shared cores: minutes on a loaded machine
});

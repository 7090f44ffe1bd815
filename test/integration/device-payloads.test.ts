import Database from 'better-sqlite3';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

describe('Zigbee2MQTT, Tasmota and Shelly payloads through a real broker', () => {
  let broker: Broker;
  let agent: LongRunning | undefined;
  const A = tempDir('devices');

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await agent?.stop();
    await broker?.stop();
  });

  it('become one reading per field with units, and garbage is counted every time but logged once a minute', async () => {
    expect(cli(['init', '--data-dir', A, '--no-http', '--mqtt-url', broker.url, '--mqtt-topic', 'zigbee2mqtt/#', '--mqtt-topic', 'tele/+/SENSOR']).code).toBe(0);
    patchConfig(A, [[['sources', 'mqtt', 'fields'], { exclude: ['battery'] }]]);
    agent = cliBackground(['run', '--data-dir', A]);
    await agent.waitForReady();
    const pub = (topic: string, message: string) => execFileSync('mosquitto_pub', ['-h', '127.0.0.1', '-p', String(broker.port), '-q', '1', '-t', topic, '-m', message]);
    pub('zigbee2mqtt/living_room', '{"temperature":21.5,"humidity":48.2,"battery":97,"linkquality":120,"occupancy":true}');
    pub('tele/plug1/SENSOR', '{"Time":"2025-11-13T03:13:20","ENERGY":{"Power":12.5,"Voltage":230}}');
    for (let i = 0; i < 30; i++) pub('zigbee2mqtt/broken', '{"state": "not a number"');
    const db = new Database(join(A, 'edge-agent.db'), { readonly: true });
    const rows = await waitFor('the device readings stored', () => {
      const r = db.prepare('SELECT sensor, value, unit FROM readings ORDER BY id').all() as { sensor: string; value: number; unit: string | null }[];
      return r.length >= 5 && r;
    });
    expect(rows).toEqual([
      { sensor: 'living_room/temperature', value: 21.5, unit: 'Cel' },
      { sensor: 'living_room/humidity', value: 48.2, unit: '%RH' },
      { sensor: 'living_room/occupancy', value: 1, unit: null },
      { sensor: 'plug1/ENERGY/Power', value: 12.5, unit: 'W' },
      { sensor: 'plug1/ENERGY/Voltage', value: 230, unit: 'V' },
    ]);
    await waitFor('30 rejections counted', () => (db.prepare("SELECT sum(value) FROM counters WHERE name = 'rejected'").pluck().get() as number | null) === 30);
    db.close();
    await agent.waitForOutput(/rejected payload/);
    const warned = agent.output().split('\n').filter((l) => l.includes('rejected payload'));
    expect(warned, agent.output()).toHaveLength(1);
    expect(warned[0]).toContain('"excerpt":"{\\"state\\": \\"not a number\\""');
  }, 60_000);
});

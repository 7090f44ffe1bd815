import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
const size = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

// 2.5 MiB: the smallest budget this config passes is 2,317,218 bytes (every growing table has its share; README "Disk budget").
const BUDGET = 2.5 * 1024 * 1024;
const PER_MESSAGE = 20;
// Checked after every commit, so it can be passed by one commit group's pages before the drop,
// and by a WAL that readers (here: `status` every 200 ms) kept from being reset for a moment.
// The WAL allowance (budget / 8) is inside the budget.
const SLACK = 512 * 1024;
const SENSORS = ['d0', 'd1', 'd2'];
const T0 = 1_763_200_000; // seconds

describe('disk budget: uplink down, small store budget, readings keep arriving (real processes)', () => {
  it('never grows past the budget, drops the oldest unbatched readings counted per sensor, and the receiver learns of every drop', { timeout: 180_000 }, async () => {
    const broker = await startMosquitto();
    const receiverPort = await freePort();
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${receiverPort}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [
      [['store', 'max_bytes'], BUDGET],
      [['batch', 'max_readings'], 200],
      [['batch', 'max_age_ms'], 100],
      [['batch', 'max_pending'], 3],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
    ]);
    const dbPath = join(dir, 'edge-agent.db');
    const agent = cliBackground(['run', '--data-dir', dir]);
    let largest = 0;
    let worst = "";
    const sampler = setInterval(() => {
      const db = size(dbPath);
      const wal = size(`${dbPath}-wal`);
      if (db + wal > largest) worst = `db ${db} + wal ${wal}`;
      largest = Math.max(largest, db + wal);
    }, 20);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      // SenML packs of 20 readings: the MQTT redelivery guard (one row per packet id, not
      // droppable) stays small beside the readings.
      const messages = 3000;
      const total = messages * PER_MESSAGE;
      await publishAll(
        pub,
        Array.from({ length: messages }, (_, m) => ({
          topic: 'sensors/pack',
          payload: JSON.stringify(Array.from({ length: PER_MESSAGE }, (_, k) => {
            const i = m * PER_MESSAGE + k;
            return { n: SENSORS[i % 3], t: T0 + i, v: i };
          })),
        })),
        200,
      );
      await pub.endAsync();
      // Every message acknowledged by the agent (committed), whether kept or later dropped.
      await waitFor('the agent to accept every message', () => status(dir).sources.mqtt?.accepted === total, 60_000, 200);
      clearInterval(sampler);
      const holding = status(dir);
      expect(largest, `store grew to ${largest} bytes (${worst})`).toBeLessThanOrEqual(BUDGET + SLACK);
      console.log(`disk budget ${BUDGET} bytes: the store's largest footprint was ${largest} (${worst})`);
      // batch.max_pending: no more reading batches were signed; a batch of drops alone may pass it by one (wire-format.md §12.12).
      expect(holding.batches.pending).toBeGreaterThanOrEqual(3);
      expect(holding.batches.pending).toBeLessThanOrEqual(4);
      expect(holding.batches.delivered).toBe(0);
      expect(holding.dropped.total).toBeGreaterThan(total / 2);
      for (const s of SENSORS) expect(holding.dropped.by_sensor[s]).toBeGreaterThan(0);
      expect(agent.output()).toMatch(/store budget reached: dropped the oldest readings not yet in a batch/);

      const receiverDir = tempDir('receiver');
      const receiver = cliBackground(['receive', '--listen', `127.0.0.1:${receiverPort}`, '--data-dir', receiverDir]);
      try {
        await receiver.waitForOutput(/public key/);
        await waitFor('the backlog delivered', () => {
          const s = status(dir);
          return s.batches.pending === 0 && s.readings.buffered === 0 && s.dropped.not_yet_reported === 0;
        }, 60_000, 200);
        const after = status(dir);
        const stats = await (await fetch(`http://127.0.0.1:${receiverPort}/v1/stats`)).json();
        expect(stats).toMatchObject({ rejected: 0, gaps: 0, dropped: after.dropped.total });
        // Kept + dropped = all acknowledged, per sensor, each kept reading exactly once.
        expect(stats.readings + stats.dropped).toBe(total);
        const rdb = new Database(join(receiverDir, 'receiver.db'), { readonly: true });
        const held = rdb.prepare('SELECT count(*) AS n, count(DISTINCT sensor || ts) AS distinct_n, max(ts) AS newest FROM readings').get() as Record<string, number>;
        const mismatched = rdb.prepare('SELECT count(*) FROM readings WHERE ts / 1000 - 1763200000 != value').pluck().get();
        rdb.close();
        expect(held).toEqual({ n: stats.readings, distinct_n: stats.readings, newest: (T0 + total - 1) * 1000 });
        expect(mismatched).toBe(0);
        const device = after.device_id as string;
        for (const s of SENSORS) expect(stats.dropped_by_sensor[`${device} ${s}`]).toBe(after.dropped.by_sensor[s]);
      } finally {
        await receiver.stop();
      }
      // The chain in the store still verifies end to end.
      const v = cli(['verify', '--data-dir', dir, '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } finally {
      clearInterval(sampler);
      await agent.stop('SIGKILL');
      await broker.stop();
    }
  });
});

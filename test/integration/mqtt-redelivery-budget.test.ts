import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
/** Readings stored plus readings counted dropped, read straight from the store: quick, so the relay in this process keeps moving. */
const handled = (dir: string) => {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return db.prepare("SELECT (SELECT count(*) FROM readings) + (SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'dropped')").pluck().get() as number;
  } finally {
    db.close();
  }
};

const BUDGET = 4 * 1024 * 1024;
const MESSAGES = 60_000;

describe('MQTT redeliveries under a disk budget (real mosquitto, the link cut while a backlog waits)', () => {
  it('a message committed once is never stored again when the broker redelivers it, dropped or not: stored + dropped = published, exactly', { timeout: 400_000 }, async () => {
    const broker = await startMosquitto();
    const proxy = await startTcpProxy(broker.port);
    const dir = tempDir('agent');
    const procs: LongRunning[] = [];
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', `mqtt://127.0.0.1:${proxy.port}`, '--uplink-url', `http://127.0.0.1:${await freePort()}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [
      [['store', 'max_bytes'], BUDGET],
      [['batch', 'max_readings'], 500],
      [['batch', 'max_age_ms'], 200],
      [['batch', 'max_pending'], 4],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
      [['http', 'listen'], `127.0.0.1:${await freePort()}`],
      [['heartbeat', 'interval_s'], 0],
    ]);
    try {
      const agent = cliBackground(['run', '--data-dir', dir]);
      procs.push(agent);
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      // Readings without a time of their own (gateway time): nothing but the redelivery guard can tell
      // a redelivered message from a new one, so every miss shows as a reading stored twice.
      const publishing = publishAll(
        pub,
        Array.from({ length: MESSAGES }, (_, i) => ({ topic: 'sensors/redeliver', payload: JSON.stringify([{ n: `s${i % 5}`, v: i }]) })),
        500,
      );
      // The link is cut twice while the agent works through the broker's queue and the budget drops the
      // oldest: what was committed but not yet acknowledged comes again, with DUP set.
      let cuts = 0;
      for (const after of [15_000, 35_000]) {
        await waitFor(`${after} readings handled`, () => handled(dir) >= after, 240_000, 100);
        const before = proxy.connections;
        proxy.cut();
        cuts++;
        await waitFor(`reconnect ${cuts} through the relay`, () => proxy.connections > before, 60_000, 50);
      }
      await publishing;
      // The broker delivers a session's messages in order, and the agent commits them in arrival order:
      // once a message published after all others is stored, every earlier one was handled.
      await pub.publishAsync('sensors/last', '1', { qos: 1 });
      await pub.endAsync();
      await waitFor('the last message stored', () => {
        const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
        try {
          return db.prepare("SELECT 1 FROM readings WHERE sensor = 'last'").get() !== undefined;
        } finally {
          db.close();
        }
      }, 240_000, 200);
      const end = status(dir);
      const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
      const recognised = (db.prepare("SELECT coalesce(sum(value), 0) FROM counters WHERE name = 'duplicates'").pluck().get() as number) ?? 0;
      db.close();
      console.log(
        `redelivery under a 4 MiB budget: ${MESSAGES} + 1 published, ${cuts} link cuts; ${end.readings.total} stored + ${end.dropped.total} dropped = ${end.readings.total + end.dropped.total}; ` +
          `${recognised} redelivered messages recognised as such`,
      );
      expect(end.dropped.total).toBeGreaterThan(0);
      expect(recognised).toBeGreaterThan(0); // the cuts did make the broker redeliver
      expect(end.readings.total + end.dropped.total).toBe(MESSAGES + 1);
      expect(agent.proc.exitCode).toBeNull();
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${procs.map((p, i) => `--- process ${i} ---\n${p.output().slice(-3000)}`).join('\n')}`);
    } finally {
      for (const p of procs) await p.stop('SIGKILL');
      await proxy.close();
      await broker.stop();
    }
  });
});

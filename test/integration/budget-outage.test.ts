import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUDGET_MARGIN_BYTES, minimumBudget } from '../../agent/store/budget-shares.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
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

const BUDGET = 4 * 1024 * 1024;
const READINGS = 100_000;
const MAX_READINGS = 500;
const MAX_PENDING = 4;
const T0 = 1_764_100_000; // seconds: reading i has t = T0 + i, value i

describe('a 4 MB budget under a 100,000-reading outage (real mosquitto, the reference receiver)', () => {
  it('an impossible budget is refused at start with the exact minimum; that minimum starts', async () => {
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', 'mqtt://127.0.0.1:1', '--uplink-url', 'http://127.0.0.1:1/v1/batches']).code).toBe(0);
    patchConfig(dir, [[['store', 'max_bytes'], BUDGET]]); // with the default batch.max_pending 100 x max_readings 1000
    const refused = cli(['run', '--data-dir', dir]);
    expect(refused.code).toBe(2);
    const m = refused.stderr.match(/store\.max_bytes: 4194304 bytes cannot hold what the store never drops.*the minimum is (\d+) bytes/);
    expect(m, refused.stderr).not.toBeNull();
    const minimum = Number(m![1]);
    expect(minimum).toBe(minimumBudget({ maxPending: 100, maxReadings: 1000, mqttInflight: [1000], hasUplink: true }));
    patchConfig(dir, [[['store', 'max_bytes'], minimum - 1]]);
    expect(cli(['run', '--data-dir', dir]).stderr).toMatch(new RegExp(`the minimum is ${minimum} bytes`));
    patchConfig(dir, [[['store', 'max_bytes'], minimum], [['http', 'listen'], `127.0.0.1:${await freePort()}`]]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForOutput(/agent running/);
    } finally {
      await agent.stop('SIGKILL');
    }
    console.log(`budget check: 4194304 refused with batch.max_pending 100 x max_readings 1000; the minimum it names, ${minimum} bytes, starts; ${minimum - 1} is refused`);
  });

  it('never passes the budget by more than the margin, keeps taking the newest readings, and every drop reaches the receiver within max_pending + 1 deliveries', { timeout: 400_000 }, async () => {
    const broker = await startMosquitto();
    const receiverPort = await freePort();
    const dir = tempDir('agent');
    const procs: LongRunning[] = [];
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${receiverPort}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [
      [['store', 'max_bytes'], BUDGET],
      [['batch', 'max_readings'], MAX_READINGS],
      [['batch', 'max_age_ms'], 200],
      [['batch', 'max_pending'], MAX_PENDING],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
      [['http', 'listen'], `127.0.0.1:${await freePort()}`],
      [['heartbeat', 'interval_s'], 0],
    ]);
    const dbPath = join(dir, 'edge-agent.db');
    let largest = 0;
    let worst = '';
    const sampler = setInterval(() => {
      const db = size(dbPath);
      const wal = size(`${dbPath}-wal`);
      if (db + wal > largest) worst = `db ${db} + wal ${wal}`;
      largest = Math.max(largest, db + wal);
    }, 20);
    try {
      const agent = cliBackground(['run', '--data-dir', dir]);
      procs.push(agent);
      await agent.waitForReady();
      const started = performance.now();
      const pub = await connectPublisher(broker.url);
      // One reading per message: the redelivery guard's worst case (a row per packet id).
      await publishAll(
        pub,
        Array.from({ length: READINGS }, (_, i) => ({ topic: 'sensors/outage', payload: JSON.stringify([{ n: `s${i % 5}`, t: T0 + i, v: i }]) })),
        500,
      );
      await pub.endAsync();
      // The fact to wait for: the newest reading published is in the store (acknowledged), the older ones stored or counted dropped.
      const newest = (T0 + READINGS - 1) * 1000;
      await waitFor('the newest reading stored', () => {
        const db = new Database(dbPath, { readonly: true });
        try {
          return db.prepare('SELECT 1 FROM readings WHERE ts = ?').get(newest) !== undefined;
        } finally {
          db.close();
        }
      }, 240_000, 500);
      const held = await waitFor('every reading stored or counted dropped', () => {
        const s = status(dir);
        return s.readings.total + s.dropped.total >= READINGS ? s : undefined;
      }, 60_000, 500);
      const ingestS = (performance.now() - started) / 1000;
      // A batch of drops alone is cut even though max_pending batches wait (wire-format.md §4.5).
      const stuck = await waitFor('a drops-only batch past max_pending', () => {
        const s = status(dir);
        return s.batches.pending === MAX_PENDING + 1 ? s : undefined;
      }, 30_000, 200);
      clearInterval(sampler);
      const sdb = new Database(dbPath, { readonly: true });
      const guardRows = sdb.prepare('SELECT count(*) FROM source_resend_guard').pluck().get() as number;
      // The newest-first window: the readings kept unbatched are the newest ones.
      const kept = sdb.prepare('SELECT count(*) AS n, min(ts) AS oldest, max(ts) AS newest FROM readings WHERE batch_seq IS NULL').get() as { n: number; oldest: number; newest: number };
      sdb.close();
      expect(largest, `store grew to ${largest} bytes (${worst})`).toBeLessThanOrEqual(BUDGET + BUDGET_MARGIN_BYTES);
      expect(guardRows).toBeLessThanOrEqual(4 * 1000 + 5000); // guardRowsFor(max_inflight 1000), plus one commit group at most
      expect(held.dropped.total).toBeGreaterThan(READINGS / 2);
      expect(kept.newest).toBe((T0 + READINGS - 1) * 1000);
      expect((kept.newest - kept.oldest) / 1000 + 1).toBe(kept.n); // contiguous up to the newest

      // Healthz says how many drops are unreported and for how long.
      const port = Number(/health, metrics and status page on http:\/\/127\.0\.0\.1:(\d+)/.exec(agent.output())![1]);
      const hz = await (await fetch(`http://127.0.0.1:${port}/healthz`)).json();
      expect(hz.checks.drops.reason).toMatch(/^\d+ readings of 5 sensors dropped under the disk budget and not yet reported upstream, the oldest drop \d+ s ago/);

      const receiver = cliBackground(['receive', '--listen', `127.0.0.1:${receiverPort}`, '--data-dir', tempDir('receiver')]);
      procs.push(receiver);
      await receiver.waitForOutput(/public key/);
      const back = performance.now();
      await waitFor('every drop reported upstream', () => status(dir).dropped.not_yet_reported === 0, 60_000, 100);
      const reportedS = (performance.now() - back) / 1000;
      const done = await waitFor('the backlog delivered', () => {
        const s = status(dir);
        return s.batches.pending === 0 && s.readings.buffered === 0 && s.dropped.not_yet_reported === 0 ? s : undefined;
      }, 120_000, 200);
      const stats = await (await fetch(`http://127.0.0.1:${receiverPort}/v1/stats`)).json();
      expect(stats).toMatchObject({ rejected: 0, gaps: 0, dropped: done.dropped.total });
      // One true thing per state change: one holding warning for the outage, one "done" for the drain.
      await agent.waitForOutput(/uplink backlog: done/, 30_000);
      const out = agent.output();
      expect(out.match(/holding readings unbatched/g)).toHaveLength(1);
      expect(out.match(/uplink backlog: done/g)).toHaveLength(1);
      expect(out.match(/uplink caught up: every held reading is in a batch again/g)).toHaveLength(1);
      expect(stats.readings + stats.dropped).toBe(READINGS);
      console.log(
        `4 MiB budget, ${READINGS} single-reading messages with the uplink down (load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): ` +
          `largest footprint ${largest} bytes (${worst}; budget ${BUDGET}, margin ${BUDGET_MARGIN_BYTES}); guard ${guardRows} rows; ` +
          `${held.dropped.total} dropped, ${kept.n} newest kept unbatched; ingest ${ingestS.toFixed(1)} s; every drop reported ${reportedS.toFixed(1)} s after the receiver came back; ` +
          `receiver: ${stats.readings} readings + ${stats.dropped} drops = ${READINGS}`,
      );
      const v = cli(['verify', '--data-dir', dir, '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${procs.map((p, i) => `--- process ${i} ---\n${p.output().slice(-3000)}`).join('\n')}`);
    } finally {
      clearInterval(sampler);
      for (const p of procs) await p.stop('SIGKILL');
      await broker.stop();
    }
  });
});

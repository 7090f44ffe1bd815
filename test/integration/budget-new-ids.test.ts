import Database from 'better-sqlite3';
import { statSync } from 'node:fs';
import { loadavg } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { BUDGET_MARGIN_BYTES, inferenceStateShare } from '../../agent/store/budget-shares.js';
import { COUNTER_ROWS_MAX } from '../../agent/store/counter-cap.js';
import { DROPS_UNREPORTED_SHARE_BYTES, KEYED_ROW_OVERHEAD_BYTES, SENSOR_SEQ_SHARE_BYTES } from '../../agent/store/keyed-tables.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const size = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

const BUDGET = 4 * 1024 * 1024;
const IDS = 50_000;
// Waits are generous (a full suite on 2 loaded cores ran this flood for more than 240 s); the test's timeout is twice their sum.
/** Series a binding may score: far more than the inference state's share of a 4 MiB budget holds. */
const MAX_SERIES = 5_000;

/** Reads one fact from the store, read-only, beside the running agent. */
function fromStore<T>(dbPath: string, sql: string): T {
  const db = new Database(dbPath, { readonly: true });
  try {
    return db.prepare(sql).get() as T;
  } finally {
    db.close();
  }
}

describe('a flood of new sensor ids under a 4 MiB budget (real mosquitto, uplink down, a model scoring every id)', () => {
  it('keeps the store within the margin and every table keyed by sensor within its own share', { timeout: 1_800_000 }, async () => {
    const broker = await startMosquitto();
    const dir = tempDir('agent');
    const procs: LongRunning[] = [];
    // The receiver starts only after the flood: until then nothing drains, drops pile up per sensor.
    const receiverPort = await freePort();
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${receiverPort}/v1/batches`, '--anomaly-sensors', '#']).code).toBe(0);
    patchConfig(dir, [
      [['store', 'max_bytes'], BUDGET],
      [['batch', 'max_readings'], 500],
      [['batch', 'max_age_ms'], 200],
      [['batch', 'max_pending'], 4],
      [['uplink', 'retry_initial_ms'], 100],
      [['uplink', 'retry_max_ms'], 300],
      [['http', 'listen'], '127.0.0.1:0'],
      [['heartbeat', 'interval_s'], 0],
      // The flood is what is under test, not the guard's watch for bursts of new ids (it would quarantine the topic).
      [['guard', 'defaults', 'new_ids_per_10s'], 0],
      [['inference', 'bindings', 'anomaly', 'max_series'], MAX_SERIES],
      [['inference', 'state_save_interval_s'], 1],
      // Not a test of link loss: on a starved machine a 30 s keepalive timed out mid-flood and the
      // broker's redelivery passed the redelivery guard (stored + dropped 90,634 for 50,000; see
      // test/integration/mqtt-redelivery-budget.test.ts for that guarantee).
      [['sources', 'mqtt', 'keepalive_s'], 600],
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
      const pub = await connectPublisher(broker.url);
      // Every message a sensor never seen before, with a seq: one sensor_seq row, one counter label and one drop row each.
      await publishAll(
        pub,
        Array.from({ length: IDS }, (_, i) => ({ topic: 'sensors/flood', payload: JSON.stringify({ n: `flood-${String(i).padStart(5, '0')}`, v: i % 97, seq: 1 }) })),
        500,
      );
      await pub.endAsync();
      const last = `flood-${String(IDS - 1).padStart(5, '0')}`;
      await waitFor('the last new id stored', () => fromStore<{ n: number }>(dbPath, `SELECT count(*) AS n FROM readings WHERE sensor LIKE '%${last}'`).n > 0, 600_000, 500);
      const keyed = (table: string, key: string) =>
        fromStore<{ rows: number; bytes: number }>(dbPath, `SELECT count(*) AS rows, coalesce(sum(length(${key}) + ${table === 'sensor_seq' ? 'length(source) + ' : ''}${KEYED_ROW_OVERHEAD_BYTES}), 0) AS bytes FROM ${table}`);
      const seq = keyed('sensor_seq', 'sensor');
      const drops = keyed('drops_unreported', 'sensor');
      const counters = fromStore<{ rows: number; forgotten: number; dropped: number }>(
        dbPath,
        "SELECT count(*) AS rows, coalesce(sum(CASE WHEN name = 'seq_forgotten' THEN value END), 0) AS forgotten, coalesce(sum(CASE WHEN name = 'dropped' THEN value END), 0) AS dropped FROM counters",
      );
      const stored = fromStore<{ n: number }>(dbPath, 'SELECT count(*) AS n FROM readings').n;
      const unreported = fromStore<{ n: number }>(dbPath, 'SELECT coalesce(sum(count), 0) AS n FROM drops_unreported').n;
      // Folding keeps the totals exact: every id is stored or counted dropped, and every drop, folded or not, reaches the network.
      const receiver = cliBackground(['receive', '--listen', `127.0.0.1:${receiverPort}`, '--data-dir', tempDir('receiver')]);
      procs.push(receiver);
      await receiver.waitForOutput(/public key/);
      const stats = await waitFor('the backlog and every drop delivered', async () => {
        const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
        if (s.batches.pending !== 0 || s.readings.buffered !== 0 || s.dropped.not_yet_reported !== 0) return undefined;
        return (await (await fetch(`http://127.0.0.1:${receiverPort}/v1/stats`)).json()) as { readings: number; dropped: number; rejected: number; gaps: number };
      }, 300_000, 200);
      // A stop saves the inference state one last time: the largest it gets.
      expect(await agent.stop('SIGTERM')).toBe(0);
      clearInterval(sampler);
      const state = fromStore<{ rows: number; bytes: number }>(dbPath, 'SELECT count(*) AS rows, coalesce(sum(length(binding) + length(key) + length(state) + 64), 0) AS bytes FROM inference_state');
      console.log(
        `${IDS} new sensor ids under a 4 MiB budget (load ${loadavg().map((l) => l.toFixed(1)).join(' ')}): largest footprint ${largest} bytes (${worst}; budget ${BUDGET}, margin ${BUDGET_MARGIN_BYTES}); ` +
          `sensor_seq ${seq.rows} rows, ${seq.bytes} bytes (share ${SENSOR_SEQ_SHARE_BYTES}; ${counters.forgotten} forgotten); drops_unreported ${drops.rows} rows, ${drops.bytes} bytes (share ${DROPS_UNREPORTED_SHARE_BYTES}), ${unreported} drops waiting; ` +
          `counters ${counters.rows} rows (cap ${COUNTER_ROWS_MAX}), ${counters.dropped} dropped, ${stored} stored; receiver ${stats.readings} readings + ${stats.dropped} drops; inference_state ${state.rows} rows, ${state.bytes} bytes (share ${inferenceStateShare(BUDGET)})`,
      );
      expect(largest, `store grew to ${largest} bytes (${worst})`).toBeLessThanOrEqual(BUDGET + BUDGET_MARGIN_BYTES);
      expect(seq.bytes).toBeLessThanOrEqual(SENSOR_SEQ_SHARE_BYTES);
      expect(counters.forgotten).toBeGreaterThan(0);
      expect(seq.rows + counters.forgotten).toBe(IDS);
      expect(drops.bytes).toBeLessThanOrEqual(DROPS_UNREPORTED_SHARE_BYTES);
      expect(counters.rows).toBeLessThanOrEqual(COUNTER_ROWS_MAX + 5000); // the cap, plus what one commit group adds before it folds
      expect(stored + counters.dropped).toBe(IDS);
      expect(unreported).toBeGreaterThan(0);
      expect(stats).toMatchObject({ rejected: 0, gaps: 0, dropped: counters.dropped });
      expect(stats.readings + stats.dropped).toBe(IDS);
      expect(state.rows).toBeGreaterThan(0);
      expect(state.bytes).toBeLessThanOrEqual(inferenceStateShare(BUDGET));
      expect(agent.output()).toMatch(/inference state of some series does not fit its share of the store budget/);
    } catch (err) {
      throw new Error(`${(err as Error).message}\n${procs.map((p, i) => `--- process ${i} ---\n${p.output().slice(-3000)}`).join('\n')}`);
    } finally {
      clearInterval(sampler);
      for (const p of procs) await p.stop('SIGKILL');
      await broker.stop();
    }
  });
});

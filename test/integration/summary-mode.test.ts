import Database from 'better-sqlite3';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { loadSkabFile } from '../../scripts/train/lib/datasets.js';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import type { Broker } from '../helpers/mosquitto.js';
import { useBrokerAndReceiver } from '../helpers/peers.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir, type RunningReceiver } from '../helpers/setup.js';

const DATASETS = process.env.EDGE_AGENT_DATASETS ?? '/work/shared/datasets';
const SKAB_FILE = 'skab/data/valve1/0.csv';
const FAULT_AT = 900;
const CHANNELS = ['accel1_rms', 'accel2_rms', 'current', 'pressure', 'temperature', 'thermocouple', 'voltage', 'flow_rms'];

function query<T>(dir: string, sql: string, ...args: unknown[]): T {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return db.prepare(sql).get(...args) as T;
  } finally {
    db.close();
  }
}

/** Everything committed is in a delivered batch, summarized, or (summary mode) kept: nothing waits. */
function settled(dir: string, readings: number): boolean {
  const r = query<{ total: number; waiting: number; open: number; events: number; pending: number }>(
    dir,
    `SELECT (SELECT count(*) FROM readings) AS total, (SELECT count(*) FROM readings WHERE batch_seq IS NULL) AS waiting,
            (SELECT count(*) FROM readings WHERE batch_seq = 0) AS open, (SELECT count(*) FROM events WHERE batch_seq IS NULL) AS events,
            (SELECT count(*) FROM batches WHERE state != 'delivered') AS pending`,
  );
  if (r.total === readings && r.waiting === 0 && r.open === 0 && r.events === 0 && r.pending === 0) return true;
  throw new Error(`not yet: ${JSON.stringify({ ...r, expected: readings })}`); // waitFor names the last state seen
}

const deliveredBytes = (dir: string) => query<{ b: number }>(dir, "SELECT coalesce(sum(length(e.envelope)), 0) AS b FROM batches b JOIN batch_envelopes e ON e.seq = b.seq WHERE b.state = 'delivered'").b;

describe.skipIf(!existsSync(join(DATASETS, SKAB_FILE)))('uplink summary mode on a replayed SKAB stream (agent/adaptive/README.md), real mosquitto and receiver', () => {
  let broker: Broker;
  let receiver: RunningReceiver;

  useBrokerAndReceiver('receiver', (p) => ({ broker, receiver } = p));

  it('sends signed per-minute summaries instead of the calm readings, full rate around an alert, the rest on request; bytes saved measured', async () => {
    const skab = loadSkabFile(DATASETS, SKAB_FILE);
    const readings = skab.rows.length * CHANNELS.length;
    const agents: { dir: string; device: string; proc?: LongRunning; topic: string }[] = [];
    for (const mode of ['full', 'summary'] as const) {
      const dir = tempDir(`agent-${mode}`);
      const topic = `site-${mode}`;
      const init = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--mqtt-topic', `${topic}/#`, '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey, '--anomaly-sensors', 'skab/accel1_rms']);
      expect(init.code, init.stderr).toBe(0);
      patchConfig(dir, [[['batch', 'max_age_ms'], 200]]);
      if (mode === 'summary') patchConfig(dir, [[['adaptive', 'summary'], { sensors: ['skab/#'], interval_ms: 60_000, before_alert_ms: 120_000, after_alert_ms: 120_000 }]]);
      agents.push({ dir, topic, device: /device id (did:key:\w+)/.exec(init.stdout)![1]! });
    }
    const [full, summary] = agents as [(typeof agents)[0], (typeof agents)[0]];
    try {
      for (const a of agents) {
        a.proc = cliBackground(['run', '--data-dir', a.dir]);
        await a.proc.waitForReady();
      }
      // The same stream to both: one SenML pack per second of the recording, 8 channels.
      const pub = await mqtt.connectAsync(broker.url, { clientId: 'skab-replay' });
      const t0 = 1_583_748_873; // 2020-03-09T10:14:33Z, the file's first row
      // Into the recording, a bearing that starts to knock at row FAULT_AT: accelerometer 1 jumps by
      // 20 of its standard deviations (as in anomaly-alert.test.ts), so stream-ad raises an alert.
      const accel = skab.rows.slice(0, 400).map((r) => r[0]!);
      const mean = accel.reduce((a, b) => a + b, 0) / accel.length;
      const sd = Math.sqrt(accel.reduce((a, b) => a + (b - mean) ** 2, 0) / accel.length);
      for (let i = 0; i < skab.rows.length; i++) {
        const row = Float64Array.from(skab.rows[i]!);
        if (i >= FAULT_AT) row[0] = row[0]! + 20 * sd;
        const pack = JSON.stringify(CHANNELS.map((n, c) => (c === 0 ? { bn: 'skab/', bt: t0 + i, n, v: row[c] } : { n, v: row[c] })));
        for (const a of agents) await pub.publishAsync(`${a.topic}/pump`, pack, { qos: 1 });
      }
      await pub.endAsync();
      // Scored (verdicts are committed after their readings), then everything settled and delivered.
      for (const a of agents) {
        await waitFor(`every accelerometer reading of ${a.dir} scored`, () => (JSON.parse(cli(['status', '--data-dir', a.dir, '--json']).stdout).inference?.scored ?? 0) >= skab.rows.length, 120_000, 500);
        await waitFor(`every reading of ${a.dir} settled and delivered`, () => settled(a.dir, readings), 120_000, 250);
      }

      const fullBytes = deliveredBytes(full.dir);
      const summaryBytes = deliveredBytes(summary.dir);
      const uploaded = query<{ n: number }>(summary.dir, 'SELECT count(*) AS n FROM readings WHERE batch_seq > 0').n;
      const kept = query<{ n: number }>(summary.dir, 'SELECT count(*) AS n FROM readings WHERE batch_seq = -1').n;
      const alerts = query<{ n: number }>(summary.dir, "SELECT count(*) AS n FROM events WHERE kind = 'report.full_rate'").n;
      const batches = (dir: string) => query<{ n: number }>(dir, 'SELECT count(*) AS n FROM batches').n;
      console.log(
        `summary mode on ${SKAB_FILE} (${skab.rows.length} s x ${CHANNELS.length} channels = ${readings} readings): full ${fullBytes} bytes delivered, ` +
          `summary ${summaryBytes} bytes (${(100 * (1 - summaryBytes / fullBytes)).toFixed(1)} % saved; ${batches(full.dir)} vs ${batches(summary.dir)} batches); ${uploaded} readings uploaded in full around ${alerts} alert(s), ${kept} kept locally`,
      );
      expect(summaryBytes).toBeLessThan(fullBytes / 2);
      expect(uploaded + kept).toBe(readings);
      // Around the alert: accelerometer 1 from before_alert_ms before the alerting reading on is uploaded in full, with its verdicts.
      const alertAt = query<{ t: number }>(summary.dir, "SELECT min(ts) AS t FROM verdicts WHERE key = 'skab/accel1_rms' AND alert = 1").t;
      expect(alertAt, 'stream-ad raised an alert on the injected fault').toBeGreaterThanOrEqual((t0 + FAULT_AT) * 1000);
      const around = query<{ up: number; total: number; kept: number }>(
        summary.dir,
        "SELECT count(*) FILTER (WHERE batch_seq > 0) AS up, count(*) AS total, count(*) FILTER (WHERE batch_seq < 1) AS kept FROM readings WHERE sensor = 'skab/accel1_rms' AND ts >= ?",
        alertAt - 120_000,
      );
      expect(around).toMatchObject({ kept: 0, up: around.total });
      expect(around.total).toBeGreaterThan(120);
      const fullRateEvent = query<{ detail: string }>(summary.dir, "SELECT detail FROM events WHERE kind = 'report.full_rate' AND key = 'skab/accel1_rms'");
      expect(JSON.parse(fullRateEvent.detail)).toMatchObject({ reason: 'alert', by: 'stream-ad', from_t: alertAt - 120_000 });
      expect(query<{ n: number }>(summary.dir, "SELECT count(*) AS n FROM readings WHERE sensor != 'skab/accel1_rms' AND batch_seq > 0").n).toBe(0); // the calm channels stayed summarized

      // The summaries are signed content of verified batches: stored by the receiver, one per sensor and minute of kept data.
      const events = (await (await fetch(`${receiver.baseUrl}/v1/devices/${summary.device}/events`)).json()) as { kind: string; key: string; detail: Record<string, number> }[];
      const sums = events.filter((e) => e.kind === 'report.summary');
      expect(new Set(sums.map((e) => e.key))).toEqual(new Set(CHANNELS.map((c) => `skab/${c}`)));
      const pressure = sums.filter((e) => e.key === 'skab/pressure');
      expect(pressure.length).toBeGreaterThanOrEqual(Math.floor(skab.rows.length / 60));
      for (const e of pressure) expect(e.detail.min <= e.detail.mean && e.detail.mean <= e.detail.max && e.detail.count >= 1 && e.detail.count <= 60).toBe(true);
      expect(sums.reduce((a, e) => a + e.detail.count, 0)).toBeGreaterThanOrEqual(kept);
      // The first minute's pressure summary matches the raw data.
      const first = pressure.find((e) => e.detail.window_start === Math.floor((t0 * 1000) / 60_000) * 60_000)!;
      const raw = skab.rows.slice(0, first.detail.count).map((r) => r[3]!);
      expect(first.detail.count).toBe(60 - (t0 % 60)); // the recording starts 33 s into its first minute
      expect(first.detail.min).toBe(Math.min(...raw));
      expect(first.detail.max).toBe(Math.max(...raw));
      expect(first.detail.mean).toBeCloseTo(raw.reduce((a, b) => a + b, 0) / raw.length, 9);

      // On request, the kept pressure readings go up in full.
      const before = (await receiver.stats()).readings;
      const keptPressure = query<{ n: number }>(summary.dir, "SELECT count(*) AS n FROM readings WHERE batch_seq = -1 AND sensor = 'skab/pressure'").n;
      const up = cli(['upload', '--data-dir', summary.dir, '--sensor', 'skab/pressure', '--by', 'ticket-17', '--json']);
      expect(up.code, up.stderr).toBe(0);
      expect(JSON.parse(up.stdout).sensors[0]).toMatchObject({ sensor: 'skab/pressure', released: keptPressure });
      await waitFor('the released readings at the receiver', async () => (await receiver.stats()).readings === before + keptPressure, 60_000, 250);
      const fullRate = ((await (await fetch(`${receiver.baseUrl}/v1/devices/${summary.device}/events`)).json()) as { kind: string; key: string; detail: Record<string, unknown> }[]).filter((e) => e.kind === 'report.full_rate');
      expect(fullRate.find((e) => e.detail.reason === 'upload')).toMatchObject({ key: 'skab/pressure', detail: { by: 'ticket-17', released: keptPressure } });
    } finally {
      for (const a of agents) await a.proc?.stop('SIGKILL');
    }
  }, 300_000);
});

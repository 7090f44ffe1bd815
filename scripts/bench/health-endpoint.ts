/**
 * Health endpoint benchmark: what a scrape and the status page cost on a store that has been
 * running a while, and what counting readings for /metrics adds to a group commit. The store
 * gets `--readings` readings over 100 sensors and a verdict for every tenth; then /metrics,
 * /api/status and /healthz are each fetched `--requests` times over loopback. Prints
 * min/median/max and a JSON summary as the last line.
 *
 *   node dist/scripts/bench/health-endpoint.js [--readings N] [--requests N]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { ClockStatus } from '../../agent/clock/clock-status.js';
import { AgentState } from '../../agent/health/agent-state.js';
import { Observability } from '../../agent/health/observability.js';
import { HealthServer } from '../../agent/health/server.js';
import { GroupCommitWriter } from '../../agent/pipeline/group-commit.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { ReadingStore } from '../../agent/store/reading-store.js';
import type { Reading, StoredReading } from '../../agent/types.js';
import { fmt, spread } from './lib/stats.js';
import { intArg } from './lib/args.js';

const totalReadings = intArg('readings', 200_000);
const requests = intArg('requests', 30);
const SENSORS = 100;
const silent = pino({ level: 'silent' });
const log = (s: string) => process.stdout.write(`${s}\n`);
const dir = mkdtempSync(join(tmpdir(), 'ea-bench-health-'));

const batchOf = (n: number, from: number): Reading[] =>
  Array.from({ length: n }, (_, i) => ({ sensor: `pump${(from + i) % SENSORS}/temp`, ts: 1_700_000_000_000 + from + i, value: Math.sin(from + i), timeSource: 'sensor' as const }));

const COMMIT_RUNS = 8;

/** Group commits of 5,000 readings, with and without the metrics listener, alternating which goes first. */
async function commitCost(): Promise<{ without: number[]; with: number[] }> {
  const out = { without: [] as number[], with: [] as number[] };
  for (let run = 0; run < COMMIT_RUNS; run++) {
    for (const withMetrics of run % 2 ? [false, true] : [true, false]) {
      const db = openDatabase(join(dir, `commit-${run}-${withMetrics}.db`));
      const writer = new GroupCommitWriter(new ReadingStore(db, 1));
      if (withMetrics) new Observability(db, undefined, silent).watchWriter(writer);
      const t0 = performance.now();
      for (let k = 0; k < 10; k++) await writer.submit({ source: 'mqtt', readings: batchOf(5000, run * 1e6 + k * 5000) });
      const rate = 50_000 / ((performance.now() - t0) / 1000);
      (withMetrics ? out.with : out.without).push(rate);
      db.close();
    }
  }
  return out;
}

async function timeRequests(url: string): Promise<{ ms: number[]; bytes: number }> {
  const ms: number[] = [];
  let bytes = 0;
  for (let i = 0; i < requests; i++) {
    const t0 = performance.now();
    const res = await fetch(url);
    const body = await res.arrayBuffer();
    ms.push(performance.now() - t0);
    bytes = body.byteLength;
  }
  return { ms, bytes };
}

const commits = await commitCost();
const w = spread(commits.with);
const wo = spread(commits.without);
log(`group commit, readings/s without metrics listener ${fmt(wo)}, with ${fmt(w)} (min/median/max of ${COMMIT_RUNS} runs of 50,000)`);

/** The listener's own work per reading, without the store: what the counting costs on the ingest path. */
function countingCost(): number {
  const obs = new Observability(openDatabase(join(dir, 'count.db')), undefined, silent);
  let listener: ((r: StoredReading[]) => void) | undefined;
  obs.watchWriter({ onCommittedReadings: (l: (r: StoredReading[]) => void) => (listener = l) } as unknown as GroupCommitWriter);
  const readings: StoredReading[] = batchOf(5000, 0).map((r, i) => ({ ...r, id: i, source: 'mqtt', boot: 1 }));
  for (let i = 0; i < 100; i++) listener!(readings);
  const samples: number[] = [];
  for (let run = 0; run < 5; run++) {
    const t0 = performance.now();
    for (let i = 0; i < 200; i++) listener!(readings);
    samples.push(((performance.now() - t0) * 1e6) / (200 * readings.length));
  }
  return spread(samples).median;
}
const countNs = countingCost();
log(`metrics counting alone: ${countNs} ns per committed reading (median of 5 runs of 1,000,000, 100 sensors)`);

const db = openDatabase(join(dir, 'big.db'));
const writer = new GroupCommitWriter(new ReadingStore(db, 1));
for (let from = 0; from < totalReadings; from += 5000) await writer.submit({ source: 'mqtt', readings: batchOf(Math.min(5000, totalReadings - from), from) });
const insertVerdict = db.prepare(
  `INSERT INTO verdicts (key, model_id, model_sha256, window_start, ts, score, outputs, value, threshold, alert, changed, boot, created_at)
   VALUES (?, 'stream-ad', ?, ?, ?, ?, '{}', ?, 0.9, 0, ?, 1, ?)`,
);
const sha = Buffer.alloc(32);
db.transaction(() => {
  for (let i = 0; i < totalReadings; i += 10) insertVerdict.run(`pump${i % SENSORS}/temp`, sha, i, i + 1, (i % 97) / 97, i, i % 5000 === 0 ? 1 : 0, Date.now());
})();
const state = new AgentState(db, new BatchStore(db), [], new ClockStatus('always'), db.name, undefined, { deviceId: 'did:key:bench', boot: 1, startedAt: Date.now(), batchMaxAgeMs: 5000 });
const obs = new Observability(db, undefined, silent);
obs.metrics.bindState(state);
for (let s = 0; s < SENSORS; s++) obs.metrics.readingsCommitted('mqtt', `pump${s}/temp`, 1);
const server = new HealthServer({ host: '127.0.0.1', port: 0, limits: { maxPendingBatchAgeS: 600 } }, state, obs.metrics, silent);
const { port } = await server.listen();
const results: Record<string, { ms: ReturnType<typeof spread>; bytes: number }> = {};
for (const path of ['/metrics', '/api/status', '/healthz']) {
  const r = await timeRequests(`http://127.0.0.1:${port}${path}`);
  results[path] = { ms: spread(r.ms, 1), bytes: r.bytes };
  log(`GET ${path}: ${fmt(results[path].ms, ' ms')} (min/median/max of ${requests}), ${r.bytes} bytes; store of ${totalReadings} readings, ${totalReadings / 10} verdicts`);
}
await server.close();
db.close();
rmSync(dir, { recursive: true, force: true });
log(JSON.stringify({ bench: 'health-endpoint', readings: totalReadings, commit_readings_per_s: { without_metrics: wo, with_metrics: w }, counting_ns_per_reading: countNs, requests: results }));

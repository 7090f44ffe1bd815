/**
 * Fleet benchmark (issue 17): many simulated gateways, each with its own key, chain, batch size
 * and rate (real envelopes from buildBatch), in a few load processes, against 1, 2 and 4
 * `edge-agent receive --backend fleet` replicas over the 3-node JetStream cluster and
 * PostgreSQL that scripts/fleet/up.sh starts. After each run every acknowledged batch is
 * looked up in PostgreSQL and every stored receipt re-verified (scripts/fleet/lib/check.ts).
 *
 *   npm run bench:fleet                  replicas 1/2/4 at full speed, then 1,000 and 10,000 gateways at low rates
 *   npm run bench:fleet -- --quick       one short run (200 gateways, 2 replicas)
 *   options: --duration-s N  --gateways N  --replicas N (quick only)
 * The last line is JSON: gateways, replicas, batches_sent, batches_stored, lost, duplicated,
 * receipts_verified, readings_verified_per_s (and the runs of a full run).
 */
import { cpus, loadavg } from 'node:os';
import { checkFleet, type FleetCheck } from '../fleet/lib/check.js';
import type { GatewayPlan } from '../fleet/lib/gateway.js';
import { fleetUp, makeReceiverKey, resetFleet, startReplica, type Fleet, type Replica } from '../fleet/lib/harness.js';
import { startLoad } from '../fleet/lib/load.js';
import { intArg } from './lib/args.js';
import { sampleRss } from './lib/procfs.js';
import { percentile } from './lib/stats.js';

interface Scenario {
  label: string;
  gateways: number;
  replicas: number;
  processes: number;
  plans: GatewayPlan[];
  durationMs: number;
}

interface RunResult {
  label: string;
  gateways: number;
  replicas: number;
  batches_sent: number;
  batches_stored: number;
  lost: number;
  duplicated: number;
  receipts_verified: number;
  readings_verified_per_s: number;
  batches_per_s: number;
  ack_ms_p50: number;
  ack_ms_p99: number;
  replica_rss_mib: { first: number; peak: number; last: number }[];
  load_before: number;
  load_after: number;
  check: Omit<FleetCheck, 'receipt_problems' | 'gap_mismatches'> & { receipt_problems: number; gap_mismatches: number };
}

const SEED = Number(process.env.FLEET_SEED ?? 17);

async function runScenario(fleet: Fleet, key: ReturnType<typeof makeReceiverKey>, s: Scenario): Promise<RunResult> {
  await resetFleet(fleet);
  const replicas: Replica[] = [];
  try {
    for (let k = 0; k < s.replicas; k++) replicas.push(await startReplica(fleet, `bench-${k + 1}`, key.file, ['--log-level', 'warn']));
    const rss = replicas.map((r) => sampleRss(r.proc.pid!, 1000));
    const loadBefore = loadavg()[0]!;
    const load = startLoad({ urls: replicas.map((r) => r.url), receiverKey: key.identity.publicKey, gateways: s.gateways, processes: s.processes, plans: s.plans, durationMs: s.durationMs, drainMs: 120_000, seed: SEED });
    await load.started;
    const t0 = performance.now();
    const { gateways } = await load.done;
    const wallS = (performance.now() - t0) / 1000;
    const samples = rss.map((r) => r.stop());
    const check = await checkFleet(fleet.postgresUrl, replicas[0]!.url, key.identity.publicKey, gateways);
    const latencies = gateways.flatMap((g) => g.latencies);
    const readingsVerified = gateways.reduce((n, g) => n + g.acked.reduce((m, a) => m + a.readings, 0), 0);
    const verifiedBatches = gateways.reduce((n, g) => n + g.receiptsVerified, 0);
    return {
      label: s.label,
      gateways: s.gateways,
      replicas: s.replicas,
      batches_sent: check.batches_sent,
      batches_stored: check.batches_stored,
      lost: check.lost,
      duplicated: check.duplicated,
      receipts_verified: Math.min(check.receipts_verified, verifiedBatches),
      readings_verified_per_s: Math.round(readingsVerified / wallS),
      batches_per_s: Math.round(check.batches_acked / wallS),
      ack_ms_p50: Math.round(latencies.length ? percentile(latencies, 50) : 0),
      ack_ms_p99: Math.round(latencies.length ? percentile(latencies, 99) : 0),
      replica_rss_mib: samples.map((x) => ({ first: Math.round(x[0] ?? 0), peak: Math.round(Math.max(...x)), last: Math.round(x[x.length - 1] ?? 0) })),
      load_before: +loadBefore.toFixed(1),
      load_after: +loadavg()[0]!.toFixed(1),
      check: { ...check, receipt_problems: check.receipt_problems.length, gap_mismatches: check.gap_mismatches.length },
    };
  } finally {
    await Promise.all(replicas.map((r) => r.stop()));
  }
}

function table(runs: RunResult[]): string {
  const head = '| run | gateways | replicas | batches sent | stored | lost | dup | receipts verified | readings/s | batches/s | ack p50/p99 ms | replica RSS first/peak/last MiB | load 1 min |';
  const rows = runs.map(
    (r) =>
      `| ${r.label} | ${r.gateways} | ${r.replicas} | ${r.batches_sent} | ${r.batches_stored} | ${r.lost} | ${r.duplicated} | ${r.receipts_verified} | ${r.readings_verified_per_s} | ${r.batches_per_s} | ${r.ack_ms_p50}/${r.ack_ms_p99} | ${r.replica_rss_mib.map((m) => `${m.first}/${m.peak}/${m.last}`).join(', ')} | ${r.load_before} → ${r.load_after} |`,
  );
  return [head, `|${'---|'.repeat(13)}`, ...rows].join('\n');
}

async function main(): Promise<void> {
  const quick = process.argv.includes('--quick');
  const durationMs = intArg('duration-s', quick ? 15 : 30) * 1000;
  const fast: GatewayPlan[] = [
    { batchSize: 50, intervalMs: 0, skipProbability: 0 },
    { batchSize: 20, intervalMs: 0, skipProbability: 0 },
  ];
  const scenarios: Scenario[] = quick
    ? [{ label: 'quick', gateways: intArg('gateways', 200), replicas: intArg('replicas', 2), processes: 2, plans: [{ batchSize: 20, intervalMs: 500, skipProbability: 0.01 }, { batchSize: 50, intervalMs: 1000, skipProbability: 0 }], durationMs }]
    : [
        ...[1, 2, 4].map((replicas) => ({ label: `saturate x${replicas}`, gateways: intArg('gateways', 200), replicas, processes: 2, plans: fast, durationMs })),
        // Low rates, each gateway its own key and chain; sized so a shared 2-core machine keeps up
        // (the point is memory against the number of devices, not speed).
        { label: '1,000 low-rate', gateways: 1000, replicas: 2, processes: 2, plans: [{ batchSize: 10, intervalMs: 20_000, skipProbability: 0 }, { batchSize: 30, intervalMs: 40_000, skipProbability: 0 }], durationMs: 2 * durationMs },
        { label: '10,000 low-rate', gateways: 10_000, replicas: 2, processes: 4, plans: [{ batchSize: 10, intervalMs: 240_000, skipProbability: 0 }], durationMs: 5 * durationMs },
      ];
  process.stderr.write(`bench:fleet seed ${SEED}, ${cpus().length} cores, load ${loadavg().map((l) => l.toFixed(1)).join(' ')}\n`);
  const fleet = fleetUp();
  const key = makeReceiverKey();
  const runs: RunResult[] = [];
  try {
    for (const s of scenarios) {
      process.stderr.write(`run ${s.label}: ${s.gateways} gateways, ${s.replicas} replicas, ${s.durationMs / 1000} s\n`);
      const r = await runScenario(fleet, key, s);
      runs.push(r);
      process.stderr.write(`${JSON.stringify(r)}\n`);
    }
  } finally {
    fleet.down();
  }
  console.log(table(runs));
  const last = runs[runs.length - 1]!;
  const { check: _, ...summary } = quick ? last : (runs.find((r) => r.replicas === 4) ?? last);
  console.log(JSON.stringify(quick ? summary : { ...summary, runs }));
  const bad = runs.filter((r) => r.lost > 0 || r.duplicated > 0 || r.check.receipt_problems > 0 || r.check.gap_mismatches > 0 || r.check.unfinished > 0);
  if (bad.length > 0) process.exitCode = 1;
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:fleet: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

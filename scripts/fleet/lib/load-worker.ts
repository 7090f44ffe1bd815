/**
 * One load process of the fleet benchmark and fault test: runs G simulated gateways against
 * the replicas and writes every gateway's result (what was acknowledged, skipped, refused) as
 * JSON to the output file. Usage: node load-worker.js CONFIG_JSON OUTPUT_FILE
 */
import { existsSync, writeFileSync } from 'node:fs';
import { ReplicaPool, SimGateway, type GatewayPlan, type GatewayResult, type RunClock } from './gateway.js';
import { seededRandom } from './random.js';

export interface WorkerConfig {
  urls: string[];
  receiverKeyHex: string;
  gateways: number;
  /** First gateway's index in the whole run, so gateways spread over replicas evenly. */
  firstIndex: number;
  plans: GatewayPlan[];
  durationMs: number;
  /** After durationMs, how long in-flight batches may still take to be acknowledged. */
  drainMs: number;
  /** When set, sending goes on past durationMs until this file exists (a test's faults are done). */
  holdFile?: string;
  seed: number;
}

export interface WorkerOutput {
  gateways: GatewayResult[];
  rssMaxBytes: number;
}

async function main(): Promise<void> {
  const [configJson, outFile] = process.argv.slice(2);
  if (!configJson || !outFile) throw new Error('usage: load-worker CONFIG_JSON OUTPUT_FILE');
  const cfg = JSON.parse(configJson) as WorkerConfig;
  const random = seededRandom(cfg.seed);
  const pool = new ReplicaPool(cfg.urls);
  const receiverKey = new Uint8Array(Buffer.from(cfg.receiverKeyHex, 'hex'));
  const gateways = Array.from({ length: cfg.gateways }, (_, k) => new SimGateway(cfg.plans[k % cfg.plans.length]!, seededRandom(Math.floor(random() * 2 ** 32)), receiverKey, pool, cfg.firstIndex + k));
  let rssMax = 0;
  const sampler = setInterval(() => (rssMax = Math.max(rssMax, process.memoryUsage().rss)), 500);
  process.stdout.write(`started ${cfg.gateways}\n`);
  const minStop = Date.now() + cfg.durationMs;
  const clock: RunClock = cfg.holdFile ? { stopAt: Infinity, deadline: Infinity } : { stopAt: minStop, deadline: minStop + cfg.drainMs };
  const holder = setInterval(() => {
    if (!cfg.holdFile || Date.now() < minStop || !existsSync(cfg.holdFile)) return;
    clock.stopAt = Date.now();
    clock.deadline = clock.stopAt + cfg.drainMs;
    clearInterval(holder);
  }, 200);
  if (!cfg.holdFile) clearInterval(holder);
  const results = await Promise.all(gateways.map((g) => g.run(clock)));
  clearInterval(sampler);
  pool.close();
  const out: WorkerOutput = { gateways: results, rssMaxBytes: rssMax };
  writeFileSync(outFile, JSON.stringify(out));
  process.stdout.write('done\n');
}

main().catch((err: unknown) => {
  process.stderr.write(`load-worker: ${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});

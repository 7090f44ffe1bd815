import type { Command } from 'commander';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { loadConfig } from '../config/load.js';
import { writeConfig } from '../config/write.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { verifyStoreChain } from '../identity/chain-verify.js';
import { createLogger } from '../log.js';
import { openDatabase } from '../store/database.js';
import { AgentError } from '../errors.js';
import { runInit } from './init.js';
import { collectStatus } from './status.js';

interface DemoOptions {
  dataDir?: string;
  seconds: number;
  sensors: number;
  /** false with --no-fault. */
  fault: boolean;
  /** batch.format (docs/wire-format.md §12.12): 3 makes every reading and verdict provable on its own (edge-agent proof). */
  batchFormat: 'auto' | 3;
  /** Seal every batch to the receiver's key (uplink.encrypt_to, §12.6). */
  seal?: boolean;
}

/**
 * The whole product on one machine: simulated sensors feed the real pipeline (store,
 * signed chained batches, HTTP uplink) into a local reference receiver, which verifies
 * every batch and signs receipts; at the end the agent's chain and receipts are re-verified.
 */
async function runDemo(opts: DemoOptions): Promise<void> {
  const base = opts.dataDir ?? mkdtempSync(join(tmpdir(), 'edge-agent-demo-'));
  const agentDir = join(base, 'agent');
  const receiverDir = join(base, 'receiver');
  const log = createLogger('warn');
  const [{ Agent }, { startReceiver }] = await Promise.all([import('../run/agent.js'), import('../receiver/server.js')]);
  const receiver = await startReceiver({ host: '127.0.0.1', port: 0, dataDir: receiverDir, logger: log.child({ component: 'receiver' }) });
  const receiverDid = deviceIdFromPublicKey(receiver.publicKey);
  const out = (s: string) => process.stdout.write(`${s}\n`);
  out(`receiver  ${receiver.url}  key ${receiverDid}`);

  const init = runInit({ dataDir: agentDir, uplinkUrl: `${receiver.url}/v1/batches`, receiverKey: receiverDid, ...(opts.seal ? { encryptTo: receiverDid } : {}), simulator: opts.sensors, anomalySensors: ['#'], force: true });
  const loaded = loadConfig(agentDir);
  // 100 readings/s per sensor, so the detector's 400-reading warm-up is over in 4 s; sensor 1 fails at 6 s.
  loaded.config.sources.simulator = { type: 'simulator', sensors: opts.sensors, interval_ms: 10, seed: 1, ...(opts.fault ? { fault: { sensor: 1, after: 600, offset: 15 } } : {}) };
  loaded.config.batch.max_age_ms = 1000;
  loaded.config.batch.format = opts.batchFormat;
  writeConfig(loaded.path, loaded.config);
  out(`agent     ${init.deviceId}\ndata      ${base}`);
  out(`models    stream-ad judges every sensor (400-reading warm-up)${opts.fault ? '; sim-01 fails after 600 readings' : ''}`);

  const agent = await Agent.create(loadConfig(agentDir), log.child({ component: 'agent' }));
  await agent.start();
  const stats = async () => (await (await fetch(`${receiver.url}/v1/stats`)).json()) as Record<string, number>;
  const started = Date.now();
  let stop = false;
  const onSignal = () => (stop = true);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  while (!stop && (opts.seconds === 0 || Date.now() - started < opts.seconds * 1000)) {
    await new Promise((r) => setTimeout(r, 2000));
    const s = await stats();
    out(
      `${Math.round((Date.now() - started) / 1000)}s  receiver verified ${s.batches} batches, ${s.readings} readings, ${s.verdicts} verdicts, ` +
        `${s.alerts_raised} alerts, rejected ${s.rejected}`,
    );
  }
  await agent.stop(5000);

  const final = await stats();
  const alerts = (await (await fetch(`${receiver.url}/v1/devices/${init.deviceId}/alerts`)).json()) as { key: string; model: string; model_sha256: string; state: string; ts: number }[];
  const status = collectStatus(agentDir);
  const db = openDatabase(join(agentDir, loaded.config.store.path), { readonly: true });
  const report = verifyStoreChain(db, { receiverKey: receiver.publicKey });
  db.close();
  await receiver.close();
  out(`stored    ${status.readings.total} readings in ${status.batches.delivered + status.batches.pending} batches (${status.batches.pending} pending)`);
  out(`receiver  ${final.readings} readings and ${final.verdicts} verdicts in ${final.batches} batches verified, ${final.rejected} rejected`);
  for (const a of alerts) out(`alert     ${a.state} ${a.key} by ${a.model} (sha256 ${a.model_sha256.slice(0, 12)}...) at ${new Date(a.ts).toISOString()}`);
  out(`chain     ${report.batches} batches re-verified, ${report.receiptsVerified} signed receipts verified, ${report.problems.length} problems`);
  for (const p of report.problems) out(`PROBLEM   ${p}`);
  const self = `node ${relative(process.cwd(), process.argv[1] ?? 'dist/agent/cli/main.js')}`;
  out(`next      ${self} status --data-dir ${agentDir}\n          ${self} verify --data-dir ${agentDir}`);
  if (report.problems.length > 0 || final.readings !== status.readings.total) process.exitCode = 1;
}

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run the whole pipeline locally: simulated sensors -> store -> on-device anomaly detection -> signed batches -> local receiver, then verify')
    .option('-d, --data-dir <dir>', 'where to keep the demo agent and receiver (default: a new temp dir)')
    .option('--seconds <n>', 'how long to run; 0 = until Ctrl-C', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 0) throw new AgentError('USAGE', `--seconds: expected a whole number, got "${v}"`);
      return n;
    }, 20)
    .option('--sensors <n>', 'number of simulated sensors', (v) => {
      const n = Number(v);
      if (!Number.isInteger(n) || n < 1 || n > 10_000) throw new AgentError('USAGE', `--sensors: expected 1..10000, got "${v}"`);
      return n;
    }, 8)
    .option('--batch-format <auto|3>', 'batch.format of the demo agent: 3 writes version-3 batches, so every reading and verdict can be proven alone (edge-agent proof)', (v) => {
      if (v === 'auto') return 'auto';
      if (v === '3') return 3;
      throw new AgentError('USAGE', `--batch-format: expected auto or 3, got "${v}"`);
    }, 'auto')
    .option('--seal', "seal every batch to the demo receiver's key (uplink.encrypt_to): implies version 3")
    .option('--no-fault', 'no failing sensor (by default sim-01 jumps by 15 after 600 readings, for the anomaly detector to find)')
    .action((opts: DemoOptions) => runDemo(opts));
}

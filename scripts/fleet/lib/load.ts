import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { GatewayPlan, GatewayResult } from './gateway.js';
import { resolveDist } from './harness.js';
import type { WorkerConfig, WorkerOutput } from './load-worker.js';

export interface LoadSpec {
  urls: string[];
  receiverKey: Uint8Array;
  gateways: number;
  processes: number;
  plans: GatewayPlan[];
  durationMs: number;
  drainMs: number;
  /** See WorkerConfig.holdFile. */
  holdFile?: string;
  seed: number;
}

export interface LoadRun {
  /** Resolves when every worker has its gateways running. */
  started: Promise<void>;
  done: Promise<{ gateways: GatewayResult[]; workerRssMaxBytes: number[] }>;
  /** SIGKILLs the workers still running (a test that failed half-way). */
  kill(): void;
}

/** Spreads the gateways over a few worker processes (dist/scripts/fleet/lib/load-worker.js). */
export function startLoad(spec: LoadSpec): LoadRun {
  const dir = mkdtempSync(join(tmpdir(), 'edge-fleet-load-'));
  const per = Math.ceil(spec.gateways / spec.processes);
  const starts: Promise<void>[] = [];
  const ends: Promise<WorkerOutput>[] = [];
  const procs: ChildProcess[] = [];
  for (let w = 0; w < spec.processes; w++) {
    const count = Math.min(per, spec.gateways - w * per);
    if (count <= 0) break;
    const cfg: WorkerConfig = {
      urls: spec.urls,
      receiverKeyHex: Buffer.from(spec.receiverKey).toString('hex'),
      gateways: count,
      firstIndex: w * per,
      plans: spec.plans,
      durationMs: spec.durationMs,
      drainMs: spec.drainMs,
      ...(spec.holdFile ? { holdFile: spec.holdFile } : {}),
      seed: (spec.seed + w * 7919) >>> 0,
    };
    const outFile = join(dir, `worker-${w}.json`);
    const proc = spawn(process.execPath, [resolveDist('scripts/fleet/lib/load-worker.js'), JSON.stringify(cfg), outFile], { stdio: ['ignore', 'pipe', 'pipe'] });
    procs.push(proc);
    let out = '';
    proc.stdout.on('data', (d: Buffer) => (out += d.toString()));
    proc.stderr.on('data', (d: Buffer) => (out += d.toString()));
    starts.push(
      new Promise((res, rej) => {
        const look = () => /started/.test(out) && res();
        proc.stdout.on('data', look);
        proc.once('exit', () => rej(new Error(`load worker ${w} exited before starting: ${out}`)));
      }),
    );
    ends.push(
      new Promise((res, rej) =>
        proc.once('exit', (code) => (code === 0 ? res(JSON.parse(readFileSync(outFile, 'utf8')) as WorkerOutput) : rej(new Error(`load worker ${w} failed (${code}): ${out.slice(-3000)}`)))),
      ),
    );
  }
  return {
    started: Promise.all(starts).then(() => undefined),
    kill: () => procs.forEach((p) => p.exitCode === null && p.signalCode === null && p.kill('SIGKILL')),
    done: Promise.all(ends).then((outs) => ({ gateways: outs.flatMap((o) => o.gateways), workerRssMaxBytes: outs.map((o) => o.rssMaxBytes) })),
  };
}

/**
 * `node dist/scripts/bench/stalls.js [--rate N] [--seconds S] [--min-ms M] [--no-inference]`: the
 * acknowledgement-latency run of `npm run bench` with the agent under `node --cpu-prof`, then the
 * event loop's long tasks read from the profile: every run of consecutive busy samples (not
 * `(idle)`) of at least M ms (default 5), with what filled it. A PUBACK can leave only between
 * tasks, so these are what the ack p99 waits behind (docs/performance.md, "Ack latency").
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchModel } from './lib/bench-model.js';
import { intArg } from './lib/args.js';
import { tempDir } from './lib/processes.js';
import { latencyRun, useModel } from './end-to-end.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  samples: number[];
  timeDeltas: number[];
}

const rate = intArg('rate', 5000);
const seconds = intArg('seconds', 10);
const minMs = intArg('min-ms', 5);
/** Start-up (module loading, model load) is not what acknowledgements wait behind: tasks before this are left out. */
const skipMs = intArg('skip-ms', 2500);
if (!process.argv.includes('--no-inference')) useModel(benchModel());
const dir = tempDir('stalls');
const lat = await latencyRun(rate, seconds, 0, { nodeArgs: ['--cpu-prof', `--cpu-prof-dir=${dir}`] });
console.log(`ack latency at ${rate}/s: p50 ${lat.p50.toFixed(2)} ms, p99 ${lat.p99.toFixed(2)} ms, max ${lat.max.toFixed(2)} ms (${lat.samples} samples)`);

const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no .cpuprofile in ${dir}: did the agent exit cleanly?`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
const byId = new Map(profile.nodes.map((n) => [n.id, n]));
const parent = new Map<number, number>();
for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);

const short = (n: ProfileNode) => {
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/');
  return `${n.callFrame.functionName || '(anonymous)'}${url ? ` ${url}:${n.callFrame.lineNumber + 1}` : ''}`;
};
/** The sample's innermost frame of our own code (dist/agent), else its leaf: where the time was spent, by our name for it. */
function owner(id: number): string {
  const leaf = byId.get(id)!;
  if (leaf.callFrame.url === '' && leaf.callFrame.functionName.startsWith('(')) return leaf.callFrame.functionName;
  for (let at: number | undefined = id; at !== undefined; at = parent.get(at)) {
    const n = byId.get(at)!;
    if (n.callFrame.url.includes('/dist/agent/')) return short(n);
  }
  return short(leaf);
}

interface Task {
  startMs: number;
  ms: number;
  owners: Map<string, number>;
}
const tasks: Task[] = [];
let t = 0;
let current: Task | undefined;
profile.samples.forEach((id, i) => {
  const dt = (profile.timeDeltas[i] ?? 0) / 1000;
  t += dt;
  const idle = byId.get(id)!.callFrame.functionName === '(idle)';
  if (idle) {
    if (current && current.ms >= minMs && current.startMs >= skipMs) tasks.push(current);
    current = undefined;
    return;
  }
  current ??= { startMs: t, ms: 0, owners: new Map() };
  current.ms += dt;
  const o = owner(id);
  current.owners.set(o, (current.owners.get(o) ?? 0) + dt);
});
if (current && current.ms >= minMs && current.startMs >= skipMs) tasks.push(current);

const total = new Map<string, number>();
for (const task of tasks) for (const [o, ms] of task.owners) total.set(o, (total.get(o) ?? 0) + ms);
console.log(`${tasks.length} tasks of >= ${minMs} ms over ${(t / 1000).toFixed(1)} s of profile; longest: ${tasks.map((x) => x.ms.toFixed(1)).sort((a, b) => Number(b) - Number(a)).slice(0, 15).join(', ')}`);
console.log('time inside those tasks, by owner:');
for (const [o, ms] of [...total.entries()].sort((a, b) => b[1] - a[1]).slice(0, 30)) console.log(`  ${ms.toFixed(1).padStart(8)} ms  ${o}`);
console.log('the longest tasks:');
for (const task of [...tasks].sort((a, b) => b.ms - a.ms).slice(0, 12)) {
  const parts = [...task.owners.entries()].sort((a, b) => b[1] - a[1]).slice(0, 4).map(([o, ms]) => `${o} ${ms.toFixed(1)}`);
  console.log(`  at ${(task.startMs / 1000).toFixed(2)} s, ${task.ms.toFixed(1)} ms: ${parts.join('; ')}`);
}

/**
 * `node dist/scripts/bench/profile.js [--messages N] [--receiver]`: one end-to-end throughput run
 * (as `npm run bench`) with the agent under `node --cpu-prof` (with --receiver: the receiver alone), then the profile summarised: self time
 * by function and by module, the top of each. What docs/performance.md "Where the time goes" cites.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { benchModel } from './lib/bench-model.js';
import { intArg } from './lib/args.js';
import { tempDir } from './lib/processes.js';
import { throughputRun, useModel } from './end-to-end.js';
import { receiverVerifyRun } from './receiver-verify.js';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
}

const messages = intArg('messages', 50_000);
if (!process.argv.includes('--no-inference')) useModel(benchModel());
const dir = tempDir('cpuprof');
const profArgs = ['--cpu-prof', `--cpu-prof-dir=${dir}`];
if (process.argv.includes('--receiver')) {
  // The receiver alone instead (receiver-verify.ts): batches of 1,000 readings.
  const r = await receiverVerifyRun({ batches: Math.ceil(messages / 1000), perBatch: 1000, core: 0, nodeArgs: profArgs });
  console.log(`run: receiver alone ${Math.round(r.perS)} readings/s verified`);
} else {
  const result = await throughputRun(messages, profArgs);
  console.log(`run: end-to-end ${Math.round(result.perS)}/s, committed ${Math.round(result.committedPerS)}/s, RSS peak ${result.rssPeakMb.toFixed(1)} MiB`);
}
const file = readdirSync(dir).find((f) => f.endsWith('.cpuprofile'));
if (!file) throw new Error(`no .cpuprofile in ${dir}: did the agent exit cleanly?`);
const profile = JSON.parse(readFileSync(join(dir, file), 'utf8')) as CpuProfile;
const total = profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0);
const byFunction = new Map<string, number>();
const byModule = new Map<string, number>();
for (const n of profile.nodes) {
  const hits = n.hitCount ?? 0;
  if (hits === 0) continue;
  const url = n.callFrame.url.replace(/^file:\/\/.*?\/(node_modules|dist)\//, '$1/');
  const fn = `${n.callFrame.functionName || '(anonymous)'} ${url}:${n.callFrame.lineNumber + 1}`;
  byFunction.set(fn, (byFunction.get(fn) ?? 0) + hits);
  const mod = url === '' ? n.callFrame.functionName : url.replace(/^(node_modules\/(@[^/]+\/)?[^/]+).*/, '$1');
  byModule.set(mod, (byModule.get(mod) ?? 0) + hits);
}
const top = (m: Map<string, number>, k: number) =>
  [...m.entries()].sort((a, b) => b[1] - a[1]).slice(0, k).map(([name, hits]) => `${((hits / total) * 100).toFixed(1).padStart(5)}%  ${name}`);
console.log(`profile ${join(dir, file)}: ${total} samples over ${((profile.endTime - profile.startTime) / 1e6).toFixed(1)} s`);
console.log('self time by module:');
for (const l of top(byModule, 25)) console.log(`  ${l}`);
console.log('self time by function:');
for (const l of top(byFunction, 40)) console.log(`  ${l}`);

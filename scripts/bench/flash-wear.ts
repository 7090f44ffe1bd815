/**
 * The low-rate flash-wear scenario of `npm run bench` alone (scripts/bench/low-rate.ts), run
 * `--runs` times, so one change to the store can be measured without the whole bench. Prints each
 * run, then min/median/max of `write_mb_per_day_20x1hz` as JSON on the last line.
 *
 *   node dist/scripts/bench/flash-wear.js [--runs 3] [--seconds 60] [--no-inference] [--set store.commit_interval_ms=2000 ...]
 */
import { loadavg } from 'node:os';
import { pinSelf } from './lib/cores.js';
import { intArg } from './lib/args.js';
import { spread } from './lib/stats.js';
import { modelEdits, useModel } from './end-to-end.js';
import { benchModel } from './lib/bench-model.js';
import { lowRateRun } from './low-rate.js';

const runs = intArg('runs', 3);
const seconds = intArg('seconds', 60);
const noInference = process.argv.includes('--no-inference');
/** `--set a.b=N`: a numeric config key edited for the run (the trade of a default, measured). */
const sets: [string[], number][] = process.argv.flatMap((arg, i) => {
  if (arg !== '--set') return [];
  const m = /^([a-z_.]+)=(\d+)$/.exec(process.argv[i + 1] ?? '');
  if (!m) throw new Error(`--set expects key.path=integer, got "${process.argv[i + 1] ?? ''}"`);
  return [[m[1]!.split('.'), Number(m[2])]];
});
pinSelf(1);
if (!noInference) useModel(benchModel());
const edits: [string[], unknown][] = [...(noInference ? [] : modelEdits())];
edits.push(...sets);

const load = () => loadavg().map((l) => l.toFixed(2)).join(' ');
const mbPerDay: number[] = [];
for (let i = 0; i < runs; i++) {
  const before = load();
  const r = await lowRateRun({ sensors: 20, seconds, agentCore: 0, peerCore: 1, edits });
  mbPerDay.push(r.mbPerDay);
  process.stdout.write(
    `run ${i + 1}: ${r.readings} readings in ${r.seconds.toFixed(1)} s, ${r.bytesWritten} bytes written, ${r.bytesPerReading.toFixed(0)} per reading, ` +
      `${r.mbPerDay.toFixed(0)} MB/day (load ${before} -> ${load()})${r.caughtUp ? '' : ', NOT CAUGHT UP (the agent fell behind: reads low)'}\n`,
  );
}
const s = spread(mbPerDay);
process.stdout.write(`${JSON.stringify({ write_mb_per_day_20x1hz: s, inference: !noInference, config: Object.fromEntries(sets.map(([k, v]) => [k.join('.'), v])) })}\n`);
process.exit(0);

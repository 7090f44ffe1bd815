/**
 * npm run eval [-- --data DIR] [--models DIR] [--write] [--only ID,ID | --only nab]
 *   --only: evaluate (and with --write, write) only these models; `nab`: only stream-ad on NAB
 *
 * Validation figures of the shipped models, measured through the agent's own runtime
 * (agent/inference: openModel, runner.push): SKAB with its protocol (first 400 rows of each file
 * warm up, the rest are scored) for skab-pump and, per channel, stream-ad; C-MAPSS FD001 RMSE and
 * NASA score on the held-out engines for cmapss-rul; stream-ad on the NAB development split through
 * `edge-agent replay` (nab.ts; needs a build, which npm run eval does); and the cost of one `session.run`.
 * --write stores the figures in models/eval.json and the manifest's `metrics.eval`.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import { loadManifest } from '../../agent/inference/index.js';
import { dataDirFromArgs, loadCmapss, loadSkab } from '../train/lib/datasets.js';
import { evalSkabPump, evalStreamAd } from './skab.js';
import { evalCmapss } from './cmapss.js';
import { evalNab, nabScorer, printNab } from './nab.js';

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i === -1 ? undefined : process.argv[i + 1];
}

/** Wall time of one session.run for a batch of n windows: min/median/max over `runs`, in µs. */
async function runCost(file: string, window: number, features: number, n: number, runs: number): Promise<{ min: number; median: number; max: number }> {
  const session = await ort.InferenceSession.create(readFileSync(file), { executionProviders: ['cpu'], intraOpNumThreads: 1, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
  const x = new Float32Array(n * window * features).map((_, i) => Math.sin(i));
  const t: number[] = [];
  for (let r = 0; r < runs + 20; r++) {
    const s = process.hrtime.bigint();
    await session.run({ x: new ort.Tensor('float32', x, [n, window, features]) });
    if (r >= 20) t.push(Number(process.hrtime.bigint() - s) / 1000);
  }
  await session.release();
  t.sort((a, b) => a - b);
  const r1 = (v: number) => Math.round(v * 10) / 10;
  return { min: r1(t[0]!), median: r1(t[Math.floor(t.length / 2)]!), max: r1(t[t.length - 1]!) };
}

const pct = (v: number) => v.toFixed(2);

async function main(): Promise<void> {
  const dataDir = dataDirFromArgs(process.argv);
  const modelsDir = path.resolve(argValue('models') ?? 'models');
  const manifest = loadManifest(modelsDir);
  const only = argValue('only');
  const ids = manifest.models.map((m) => m.id).filter((id) => only === undefined || (only === 'nab' ? id === 'stream-ad' : only.split(',').includes(id)));
  const report: Record<string, Record<string, unknown>> = {};
  if (ids.includes('stream-ad')) {
    const r = await evalNab(path.join(dataDir, 'nab-dev'), modelsDir, { scorer: nabScorer(dataDir) });
    report['stream-ad'] = { nab_dev: r };
    printNab(r);
  }
  if (only === 'nab') return;
  const skab = ids.includes('stream-ad') || ids.includes('skab-pump') ? loadSkab(dataDir) : null;

  if (skab && ids.includes('skab-pump')) {
    const r = await evalSkabPump(modelsDir, skab.faults, skab.free);
    report['skab-pump'] = { skab: r };
    console.log(`skab-pump  SKAB test parts: F1 ${r.all.f1.toFixed(3)}  FAR ${pct(r.all.far)}%  MAR ${pct(r.all.mar)}%  (MCC ${r.all.mcc.toFixed(3)}, ${r.all.rows} rows)`);
    for (const [g, f] of Object.entries(r.byGroup)) console.log(`  ${g.padEnd(8)} F1 ${f.f1.toFixed(3)}  FAR ${pct(f.far)}%  MAR ${pct(f.mar)}%`);
    console.log(`  anomaly-free.csv after warm-up: alerting ${(100 * r.freeAlertRate).toFixed(1)}% of rows`);
    console.log('  SKAB leaderboard: Conv-AE 0.78 / 13.55 / 28.02, MSET 0.78 / 39.73 / 14.13, T2+Q 0.76 / 26.62 / 24.92, LSTM-AE 0.74 / 29.96 / 25.92, T2 0.66 / 19.21 / 42.6');
  }
  if (skab && ids.includes('stream-ad')) {
    const r = await evalStreamAd(modelsDir, skab.faults, skab.free);
    report['stream-ad'] = { ...report['stream-ad'], skab: r };
    console.log(`stream-ad  SKAB per channel (each channel its own key), pooled: F1 ${r.pooled.f1.toFixed(3)}  FAR ${pct(r.pooled.far)}%  MAR ${pct(r.pooled.mar)}%  (MCC ${r.pooled.mcc.toFixed(3)})`);
    for (const [ch, f] of Object.entries(r.perChannel)) console.log(`  ${ch.padEnd(20)} F1 ${f.f1.toFixed(3)}  FAR ${pct(f.far)}%  MAR ${pct(f.mar)}%  MCC ${f.mcc.toFixed(3)}`);
    console.log(`  any channel alerting:  F1 ${r.anyChannel.f1.toFixed(3)}  FAR ${pct(r.anyChannel.far)}%  MAR ${pct(r.anyChannel.mar)}%`);
    console.log(`  anomaly-free.csv, every channel its own key: ${r.freeAlertsPer1000Rows.toFixed(2)} alerts raised per 1,000 scored rows (${r.freeAlerts} over ${r.freeRows} rows)`);
  }
  if (ids.includes('cmapss-rul')) {
    const r = await evalCmapss(modelsDir, loadCmapss(dataDir));
    report['cmapss-rul'] = { cmapss: r };
    console.log(`cmapss-rul ${r.engines} held-out FD001 engines: RMSE at the last cycle of ${r.truncations} truncated trajectories ${r.rmse_last_cycle_truncated.toFixed(2)} (NASA score ${r.nasa_score_truncated.toFixed(1)})`);
    console.log(`  RMSE over all cycles ${r.rmse_all_cycles.toFixed(2)}, over cycles with true RUL < cap ${r.rmse_all_cycles_rul_le_cap.toFixed(2)}`);
    console.log(`  alert (rul <= 30, hysteresis) raised on ${r.alerted}/${r.engines} engines, true cycles left at first alert min/median/max ${r.leadCycles.min}/${r.leadCycles.median}/${r.leadCycles.max}; ${r.earlyAlerts} raised with > 60 cycles left`);
    console.log('  published FD001 test RMSE: CNN 18.45, LSTM 16.14, deep CNN 12.61');
  }
  for (const m of manifest.models.filter((x) => ids.includes(x.id))) {
    const file = path.join(modelsDir, m.file);
    const f = m.input.features.length;
    const b1 = await runCost(file, m.input.window, f, 1, 300);
    const b256 = await runCost(file, m.input.window, f, 256, 300);
    (report[m.id] ??= {}).run_us = { batch1: b1, batch256: b256 };
    console.log(`${m.id}: one session.run, 1 thread, min/median/max µs: batch 1 ${b1.min}/${b1.median}/${b1.max}, batch 256 ${b256.min}/${b256.median}/${b256.max}`);
  }
  if (process.argv.includes('--write')) {
    // With --only, the other models' figures stay as they were.
    const evalPath = path.join(modelsDir, 'eval.json');
    const previous = only !== undefined && existsSync(evalPath) ? (JSON.parse(readFileSync(evalPath, 'utf8')) as Record<string, unknown>) : {};
    writeFileSync(evalPath, `${JSON.stringify({ ...previous, ...report }, roundReplacer, 2)}\n`);
    const manifestPath = path.join(modelsDir, 'manifest.json');
    const raw = JSON.parse(readFileSync(manifestPath, 'utf8')) as { models: { id: string; metrics?: Record<string, unknown> }[] };
    for (const m of raw.models) if (report[m.id]) m.metrics = { ...(m.metrics ?? {}), eval: JSON.parse(JSON.stringify(report[m.id], roundReplacer)) };
    writeFileSync(manifestPath, `${JSON.stringify(raw, null, 2)}\n`);
    console.log(`wrote ${path.join(modelsDir, 'eval.json')} and metrics.eval in the manifest`);
  }
}

function roundReplacer(_k: string, v: unknown): unknown {
  return typeof v === 'number' && !Number.isInteger(v) ? Math.round(v * 1000) / 1000 : v;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.stack ?? err.message : err);
  process.exit(1);
});

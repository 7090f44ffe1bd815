/**
 * npm run eval [-- --data DIR] [--models DIR] [--write] [--only ID,ID | --only nab] [--cmapss-seeds 1,2,3|none]
 *   --only: evaluate (and with --write, write) only these models; `nab`: only stream-ad on NAB
 *   --cmapss-seeds: retrain cmapss-rul's k-fold for these seeds (default 1); none: report the stored one
 *
 * Validation figures of the shipped models, measured through the agent's own runtime
 * (agent/inference: openModel, runner.push): SKAB with its protocol (first 400 rows of each file
 * warm up, the rest are scored) for skab-pump and, per channel, stream-ad; C-MAPSS FD001 RMSE and
 * NASA score on the held-out engines for cmapss-rul; stream-ad on the NAB development split through
 * `edge-agent replay` (nab.ts; needs a build, which npm run eval does); and the cost of one `session.run`.
 * --write stores the figures in models/eval.json and the manifest's `metrics.eval`.
 */
import '../../agent/inference/ort-privacy.js'; // first of all: onnxruntime without telemetry (ort-privacy.ts)
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

/** The cross-validated SKAB figures `npm run train` stored in the manifest (metrics.skab_tuning.cross_validated). */
function runnerEntryMetrics(manifest: ReturnType<typeof loadManifest>, id: string): { f1: number; far: number; mar: number } | null {
  const m = manifest.models.find((x) => x.id === id)?.metrics as { skab_tuning?: { cross_validated?: { f1?: unknown; far?: unknown; mar?: unknown } } } | undefined;
  const cv = m?.skab_tuning?.cross_validated;
  return typeof cv?.f1 === 'number' && typeof cv.far === 'number' && typeof cv.mar === 'number' ? { f1: cv.f1, far: cv.far, mar: cv.mar } : null;
}

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
    console.log(`  SKAB repository's protocol (every row, warm-up rows predicted normal, ${r.everyRow.rows} rows): F1 ${r.everyRow.f1.toFixed(3)}  FAR ${pct(r.everyRow.far)}%  MAR ${pct(r.everyRow.mar)}%`);
    console.log(`  anomaly-free.csv after warm-up (${r.free.rows} rows): ${r.free.raises} alerts raised (${r.free.raises_per_1000.toFixed(2)} per 1,000 rows), in alert on ${r.free.rows_in_alert_pct.toFixed(1)}% of rows`);
    const cv = runnerEntryMetrics(manifest, 'skab-pump');
    if (cv) console.log(`  cross-validated (npm run train, every candidate replayed through the runtime): F1 ${cv.f1.toFixed(3)}  FAR ${pct(cv.far)}%  MAR ${pct(cv.mar)}%`);
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
    // --cmapss-seeds none: no retraining (the k-fold figures are then the ones npm run train stored).
    const seedArg = argValue('cmapss-seeds') ?? '1';
    const seeds = seedArg === 'none' ? [] : seedArg.split(',').map(Number);
    if (!seeds.every((x) => Number.isInteger(x) && x > 0)) throw new Error(`--cmapss-seeds: "${seedArg}" is neither "none" nor a list of positive integers`);
    const r = await evalCmapss(modelsDir, loadCmapss(dataDir), seeds, (s) => console.log(s));
    report['cmapss-rul'] = { cmapss: r };
    const k = r.kfold;
    const ms = (m: { mean: number; sd: number }, d = 2) => `${m.mean.toFixed(d)} ± ${m.sd.toFixed(d)}`;
    console.log(`cmapss-rul k-fold (${k.seeds.length} seed(s) x ${k.draws_per_seed} test-set-like draws of 100 cut engines, ${r.kfoldSource === 'retrained' ? `retrained in ${r.validationSeconds.toFixed(0)} s` : 'as stored by npm run train'}):`);
    console.log(`  RMSE, true RUL capped at 125: ${ms(k.rmse_capped)}  PHM08 ${ms(k.phm08_capped, 0)};  uncapped: RMSE ${ms(k.rmse)}  PHM08 ${ms(k.phm08, 0)}`);
    const l = k.late_cut;
    console.log(`  late cuts (1..${l.max_rul} cycles left): capped RMSE ${ms(l.rmse_capped)}  PHM08 ${ms(l.phm08_capped, 0)};  uncapped: RMSE ${ms(l.rmse)}  PHM08 ${ms(l.phm08, 0)}`);
    console.log(`  independent evaluation of v1.0.0 on the official test set: RMSE 15.12, PHM08 310 (capped 13.92 / 278)`);
    console.log(`  service_within: true RUL >= it on ${(100 * r.shippedBoundCoverage).toFixed(1)} % of out-of-fold cycles with RUL <= 125`);
    const a = r.alertOutOfFold;
    console.log(`  alert (service_within <= 20 for 3 cycles), out of fold: ${a.alerted}/${a.engines} engines before failure, true cycles left at first alert min/median/max ${a.lead.min}/${a.lead.median}/${a.lead.max}; ${a.early} with > 60 left, ${a.late} with < 5 left or none`);
    console.log(`  runtime (shipped model, all 100 engines, in-sample): ${r.runtime.verdicts} verdicts, mean rul_sd ${r.runtime.meanRulSd.toFixed(2)}, mean rul - service_within ${r.runtime.meanSlack.toFixed(2)} cycles`);
    console.log('  published FD001 test RMSE: CNN 18.45, LSTM 16.14, deep CNN 12.61, DA-TCN 11.78, TCNN-Transformer 11.40');
  }
  for (const m of manifest.models.filter((x) => ids.includes(x.id))) {
    const file = path.join(modelsDir, m.file);
    const f = m.input.features.length;
    const b1 = await runCost(file, m.input.window, f, 1, 300);
    const b64 = await runCost(file, m.input.window, f, 64, 300);
    const b256 = await runCost(file, m.input.window, f, 256, 300);
    (report[m.id] ??= {}).run_us = { batch1: b1, batch64: b64, batch256: b256 };
    console.log(`${m.id}: one session.run, 1 thread, min/median/max µs: batch 1 ${b1.min}/${b1.median}/${b1.max}, batch 64 ${b64.min}/${b64.median}/${b64.max}, batch 256 ${b256.min}/${b256.median}/${b256.max}`);
  }
  // One JSON line with every figure, for programs (and the model card's tables).
  console.log(JSON.stringify({ summary: report }, roundReplacer));
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

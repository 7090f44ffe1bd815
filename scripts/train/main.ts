/**
 * npm run train [-- --data DIR] [--out DIR] [--only id,id] [--oof FILE: cmapss-rul's out-of-fold predictions, for analysis]
 *   [--kfold-from FILE,FILE: cmapss-rul's k-fold not rerun but read from `cmapss-cv.js --oof` files of the same config]
 *
 * Trains every on-device model from ../shared/datasets (or --data), exports it to ONNX, checks
 * the ONNX graph in onnxruntime-node against the JS forward pass, and rewrites models/ (the .onnx
 * files and their manifest.json entries, sha256 included). Fixed seeds: same data, same bytes.
 */
import path from 'node:path';
import { dataDirFromArgs, loadCmapss, loadSkab } from './lib/datasets.js';
import { exportOnnx } from './lib/onnx-export.js';
import { checkAgainstOrt } from './lib/ort-check.js';
import { writeModel, type EntryDraft } from './lib/manifest.js';
import { normalise, windowsAt } from './lib/contract.js';
import { seriesSpec } from './lib/anomaly-training.js';
import type { WindowModel } from './lib/window-model.js';
import { trainStreamAd, streamAdEntry } from './stream-ad.js';
import { trainSkabPump, skabPumpEntry } from './skab-pump.js';
import { CMAPSS_CONFIG, trainCmapss, cmapssEntry } from './cmapss-rul.js';
import { writeOofFile } from './lib/rul-oof-store.js';
import { checkRulAgainstOrt, exportRulOnnx } from './lib/rul-model.js';

const MODELS = ['stream-ad', 'skab-pump', 'cmapss-rul'] as const;

function argValue(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  if (i === -1) return undefined;
  const v = process.argv[i + 1];
  if (v === undefined || v.startsWith('--')) throw new Error(`--${name} needs a value`);
  return v;
}

async function ship(outDir: string, model: WindowModel, entry: EntryDraft, sample: Float32Array, n: number): Promise<void> {
  const bytes = exportOnnx(model, { name: entry.id, doc: String(entry.description) });
  const check = await checkAgainstOrt(bytes, model, sample, n);
  const metrics = (entry.metrics ?? {}) as Record<string, unknown>;
  entry.metrics = { ...metrics, export_check: { windows: check.windows, max_abs_diff_ort_vs_js: Number(check.maxAbsDiff.toExponential(2)) } };
  const digest = writeModel(outDir, entry, bytes);
  console.log(`${entry.id}: ${entry.file} ${bytes.length} bytes sha256 ${digest}; onnxruntime vs JS max |diff| ${check.maxAbsDiff.toExponential(2)} on ${check.windows} windows`);
}

/** Windows of real data for the export check: ends spread over a series. */
function sampleWindows(rows: number[][], features: number, window: number, z: Float32Array, count: number): { x: Float32Array; n: number } {
  const ends: number[] = [];
  for (let k = 0; k < count; k++) ends.push(window - 1 + Math.floor(((rows.length - window) * k) / count));
  return { x: windowsAt(z, features, window, ends), n: ends.length };
}

async function main(): Promise<void> {
  const dataDir = dataDirFromArgs(process.argv);
  const outDir = path.resolve(argValue('out') ?? 'models');
  const only = argValue('only')?.split(',') ?? [...MODELS];
  for (const id of only) if (!(MODELS as readonly string[]).includes(id)) throw new Error(`--only: unknown model "${id}" (known: ${MODELS.join(', ')})`);
  const started = Date.now();
  const needSkab = only.includes('stream-ad') || only.includes('skab-pump');
  const skab = needSkab ? loadSkab(dataDir) : null;

  if (skab && only.includes('stream-ad')) {
    const t = trainStreamAd(skab.free, skab.faults);
    await ship(outDir, t.model, streamAdEntry(t), t.sample.x, t.sample.n);
  }
  if (skab && only.includes('skab-pump')) {
    const t = await trainSkabPump(skab.free, skab.faults, undefined, false, (s) => console.log(s));
    const file = skab.faults[0]!;
    const rows = file.rows.map((r) => Array.from(r));
    const z = normalise(seriesSpec(t.cfg), rows, rows[0]!.length);
    const s = sampleWindows(rows, rows[0]!.length, t.cfg.window, z, 64);
    await ship(outDir, t.model, skabPumpEntry(t), s.x, s.n);
  }
  if (only.includes('cmapss-rul')) {
    const kfoldFrom = argValue('kfold-from')?.split(',').map((f) => path.resolve(f));
    const t = await trainCmapss(loadCmapss(dataDir), dataDir, CMAPSS_CONFIG, (s) => console.log(s), kfoldFrom);
    const oofPath = argValue('oof');
    if (oofPath) writeOofFile(oofPath, t.validation.oofs, t.cfg);
    const entry = cmapssEntry(t);
    const bytes = exportRulOnnx(t.model, { name: entry.id, doc: String(entry.description) });
    const check = await checkRulAgainstOrt(bytes, t.model, t.sample.x, t.sample.n);
    entry.metrics = { ...(entry.metrics as Record<string, unknown>), export_check: { windows: check.windows, outputs: 3, max_abs_diff_ort_vs_js: Number(check.maxAbsDiff.toExponential(2)) } };
    const digest = writeModel(outDir, entry, bytes);
    const k = t.validation.kfold;
    const l = k.late_cut;
    console.log(`cmapss-rul: k-fold RMSE (capped) ${k.rmse_capped.mean.toFixed(2)} ± ${k.rmse_capped.sd.toFixed(2)}, PHM08 ${k.phm08_capped.mean.toFixed(0)} ± ${k.phm08_capped.sd.toFixed(0)}; late cuts: capped ${l.rmse_capped.mean.toFixed(2)} ± ${l.rmse_capped.sd.toFixed(2)} / ${l.phm08_capped.mean.toFixed(0)} ± ${l.phm08_capped.sd.toFixed(0)}, uncapped ${l.rmse.mean.toFixed(2)} ± ${l.rmse.sd.toFixed(2)} / ${l.phm08.mean.toFixed(0)} ± ${l.phm08.sd.toFixed(0)}`);
    console.log(`cmapss-rul: ${entry.file} ${bytes.length} bytes sha256 ${digest}; onnxruntime vs JS max |diff| ${check.maxAbsDiff.toExponential(2)} on ${check.windows} windows, 3 outputs`);
  }
  console.log(`trained ${only.join(', ')} in ${((Date.now() - started) / 1000).toFixed(1)} s`);
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});

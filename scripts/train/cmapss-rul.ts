/**
 * cmapss-rul: remaining useful life (cycles) of a turbofan from C-MAPSS FD001 sensors, one
 * prediction per cycle (edge padding until the first full window), with the ensemble's spread and a
 * calibrated lower bound (`service_within`) that the alert acts on. The procedure is validated by
 * k-fold over all 100 training engines with test-set-like cuts (lib/rul-kfold.ts); the shipped
 * model is then trained on all 100 with the same procedure.
 */
import path from 'node:path';
import type { Engine } from './lib/datasets.js';
import { CMAPSS_FEATURES, featureRows, fixedStats, rulTargets } from './lib/cmapss-data.js';
import { normalise, windowsAt, type SeriesSpec } from './lib/contract.js';
import { fit } from './lib/fit.js';
import { Mlp, type Activation } from './lib/mlp.js';
import { Prng } from './lib/prng.js';
import { summaryProjection, project, type SummarySpec } from './lib/rul-features.js';
import { combine, memberPredictions, rulFeatures, type RulModel } from './lib/rul-model.js';
import { outOfFold, summarise, type KfoldSummary, type Oof } from './lib/rul-kfold.js';
import { outOfFoldParallel } from './lib/rul-parallel.js';
import { readOofFiles } from './lib/rul-oof-store.js';
import { forwardWindows, type WindowModel } from './lib/window-model.js';
import { alertLeads, calibrateLowerBound, type AlertLeads, type LowerBoundFit } from './lib/rul-lower-bound.js';

export interface RulConfig {
  /** 'summary': fixed window summaries + bagged MLPs (shipped); 'raw': one MLP over the raw window (v1.0.0). */
  arch: 'summary' | 'raw';
  window: number;
  summary: SummarySpec;
  hidden: number[];
  activation: Activation;
  cap: number;
  epochs: number;
  batch: number;
  lr: number;
  lrDecay: number;
  weightDecay: number;
  members: number;
  /** Each member trains on a bootstrap sample of the training engines (bagging): the spread then means something. */
  bootstrap: boolean;
  /**
   * Each member trains on every stride-th cycle (offset by member). 2 halves the training time (v2.0.0);
   * 1 (every cycle, v2.1.0) measured better in the 3-seed k-fold (MODEL_CARD.md).
   */
  stride: number;
  /** Gaussian noise on the (standardised) network inputs during training. */
  inputNoise: number;
  seed: number;
  clip: number;
  folds: number;
  cvSeeds: number[];
  drawsPerSeed: number;
  minCycles: number;
  /** Share of cycles with true RUL <= cap whose true RUL must be >= service_within. */
  coverage: number;
}

export const CMAPSS_CONFIG: RulConfig = {
  arch: 'summary',
  window: 50,
  summary: { means: [5, 10, 20, 50], slopes: [10, 20, 50] },
  hidden: [32, 16],
  activation: 'relu',
  cap: 125,
  epochs: 30,
  batch: 128,
  lr: 2e-3,
  lrDecay: 0.92,
  weightDecay: 0,
  members: 5,
  bootstrap: true,
  stride: 1,
  inputNoise: 0.1,
  seed: 21,
  clip: 10,
  folds: 5,
  cvSeeds: [1, 2, 3],
  drawsPerSeed: 20,
  minCycles: 31,
  coverage: 0.95,
};

/** The shipped model of v1.0.0, kept to check that the k-fold protocol predicts its official figure. */
export const CMAPSS_V1_CONFIG: RulConfig = {
  ...CMAPSS_CONFIG, arch: 'raw', hidden: [64, 32], epochs: 40, lr: 1e-3, lrDecay: 0.95, members: 1, bootstrap: false, stride: 1, inputNoise: 0.4,
};

export function rulSpec(cfg: RulConfig, stats: { mean: number[]; std: number[] }): SeriesSpec {
  return { window: cfg.window, pad: 'edge', normalisation: { type: 'fixed', mean: stats.mean, std: stats.std }, clip: cfg.clip };
}

const F = CMAPSS_FEATURES.length;

/** Every cycle's normalised, edge-padded window of one engine. */
function engineWindowsOf(e: Engine, spec: SeriesSpec): Float32Array {
  const z = normalise(spec, featureRows(e), F);
  return windowsAt(z, F, spec.window, e.rows.map((_, t) => t));
}

export interface Predictor {
  /** Per cycle of the engine: mean prediction and member spread. */
  predict(e: Engine): { mean: Float32Array; sd: Float32Array };
  rul?: RulModel;
  raw?: WindowModel;
  spec: SeriesSpec;
}

/** Trains the procedure of `cfg` on `train` engines with `seed`; quiet unless `label`. */
export function trainRul(train: Engine[], cfg: RulConfig, seed: number, label?: string): Predictor {
  const spec = rulSpec(cfg, fixedStats(train));
  const windows = train.map((e) => engineWindowsOf(e, spec));
  const targets = train.map((e) => Float32Array.from(rulTargets(e, cfg.cap), (v) => v / cfg.cap));
  const quiet = label === undefined;
  if (cfg.arch === 'raw') {
    const width = cfg.window * F;
    const x = concat(windows);
    const y = concat(targets);
    const mlp = new Mlp({ sizes: [width, ...cfg.hidden, 1], hidden: cfg.activation }, new Prng(seed));
    fit(mlp, x, y, y.length, { epochs: cfg.epochs, batch: cfg.batch, lr: cfg.lr, lrDecay: cfg.lrDecay, weightDecay: cfg.weightDecay, inputNoise: cfg.inputNoise, seed: seed + 1, loss: 'mse', label: label ?? '', quiet });
    const raw: WindowModel = { head: 'regressor', window: cfg.window, features: F, outputName: 'rul', outputScale: cfg.cap, levelWeight: [], mlp };
    return {
      spec, raw,
      predict: (e) => {
        const w = engineWindowsOf(e, spec);
        const mean = forwardWindows(raw, w, e.rows.length);
        return { mean, sd: new Float32Array(mean.length) };
      },
    };
  }
  const { p, k } = summaryProjection(cfg.window, F, cfg.summary);
  const feats = windows.map((w, i) => project(w, train[i]!.rows.length, p, k));
  // Standardise each summary over the training windows, folded into the projection and a bias.
  const all = concat(feats);
  const n = all.length / k;
  const mu = new Float64Array(k);
  const sd = new Float64Array(k);
  for (let i = 0; i < all.length; i++) mu[i % k]! += all[i]! / n;
  for (let i = 0; i < all.length; i++) sd[i % k]! += (all[i]! - mu[i % k]!) ** 2 / n;
  for (let c = 0; c < k; c++) sd[c] = Math.max(Math.sqrt(sd[c]!), 1e-6);
  const projection = Float32Array.from(p, (v, i) => v / sd[i % k]!);
  const featureBias = Float32Array.from(mu, (m, c) => -m / sd[c]!);
  const std = feats.map((fe) => Float32Array.from(fe, (v, i) => (v - mu[i % k]!) / sd[i % k]!));
  const rng = new Prng(seed);
  const members = Array.from({ length: cfg.members }, (_, m) => {
    const pick = cfg.bootstrap ? train.map(() => rng.int(train.length)) : train.map((_, i) => i);
    const every = (a: Float32Array, width: number) => strided(a, width, cfg.stride, m % cfg.stride);
    const x = concat(pick.map((i) => every(std[i]!, k)));
    const y = concat(pick.map((i) => every(targets[i]!, 1)));
    const mlp = new Mlp({ sizes: [k, ...cfg.hidden, 1], hidden: cfg.activation }, new Prng(seed + 100 * m));
    fit(mlp, x, y, y.length, {
      epochs: cfg.epochs, batch: cfg.batch, lr: cfg.lr, lrDecay: cfg.lrDecay, weightDecay: cfg.weightDecay, inputNoise: cfg.inputNoise,
      seed: seed + 100 * m + 1, loss: 'mse', label: `${label ?? ''} member ${m + 1}/${cfg.members}`, quiet,
    });
    return mlp;
  });
  const rul: RulModel = { window: cfg.window, features: F, projection, featureBias, k, members, cap: cfg.cap, lower: { margin: 0, spread: 0 } };
  return {
    spec, rul,
    predict: (e) => {
      const w = engineWindowsOf(e, spec);
      const n = e.rows.length;
      const o = combine(rul, memberPredictions(rul, rulFeatures(rul, w, n), n), n);
      return { mean: o.rul, sd: o.rul_sd };
    },
  };
}

/** Rows offset, offset + stride, ... of a [rows][width] array. */
function strided(a: Float32Array, width: number, stride: number, offset: number): Float32Array {
  if (stride === 1) return a;
  const rows = a.length / width;
  const out = new Float32Array(Math.ceil(Math.max(0, rows - offset) / stride) * width);
  let at = 0;
  for (let r = offset; r < rows; r += stride, at += width) out.set(a.subarray(r * width, (r + 1) * width), at);
  return out;
}

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((s, a) => s + a.length, 0));
  let at = 0;
  for (const a of parts) {
    out.set(a, at);
    at += a.length;
  }
  return out;
}

export interface RulValidation {
  kfold: KfoldSummary;
  lowerBound: LowerBoundFit;
  oofs: Oof[];
  seconds: number;
}

/** k-fold validation of the procedure, seeds varied; calibrates the lower bound on the out-of-fold predictions. */
export function validateRul(engines: Engine[], cfg: RulConfig, seeds: number[] = cfg.cvSeeds, log: (s: string) => void = () => undefined): RulValidation {
  const started = Date.now();
  const oofs = seeds.map((seed) =>
    outOfFold(engines, cfg.folds, seed, (train, valid, fold) => {
      const t0 = Date.now();
      const model = trainRul(train, cfg, cfg.seed + 1000 * seed + 10 * fold);
      log(`  seed ${seed} fold ${fold + 1}/${cfg.folds}: ${((Date.now() - t0) / 1000).toFixed(1)} s`);
      return valid.map((e) => model.predict(e));
    }),
  );
  return {
    kfold: summarise(engines, oofs, cfg.drawsPerSeed, cfg.cap, cfg.minCycles, cfg.folds),
    lowerBound: calibrateLowerBound(engines, oofs, cfg.cap, cfg.coverage),
    oofs,
    seconds: (Date.now() - started) / 1000,
  };
}

export interface TrainedCmapss {
  model: RulModel;
  cfg: RulConfig;
  spec: SeriesSpec;
  validation: RulValidation;
  /** Out-of-fold alerts of the shipped rule, from the first validation seed. */
  leads: AlertLeads;
  sample: { x: Float32Array; n: number };
  trainingSeconds: number;
  /** Where the out-of-fold predictions came from: this run, or stored files of the same config. */
  kfoldSource: 'computed' | { files: string[] };
}

/** The alert an operator acts on: service needed within 20 cycles (lower bound), for 3 cycles running. */
export const SERVICE_ALERT = { direction: 'below', on: 20, off: 30, on_count: 3, off_count: 3 } as const;

/**
 * Validates the procedure by k-fold (one child process per seed, rul-parallel.ts), or takes the
 * out-of-fold predictions of an earlier `cmapss-cv.js --oof` run of the same config (`kfoldFrom`,
 * rul-oof-store.ts), then trains the shipped model on all engines with it.
 */
export async function trainCmapss(
  engines: Engine[], dataDir: string, cfg: RulConfig = CMAPSS_CONFIG, log: (s: string) => void = () => undefined, kfoldFrom?: string[],
): Promise<TrainedCmapss> {
  if (cfg.arch !== 'summary') throw new Error('the shipped cmapss-rul uses arch "summary"; "raw" is for validation only');
  const started = Date.now();
  const config = cfg as unknown as Record<string, unknown>;
  const oofs = kfoldFrom ? readOofFiles(kfoldFrom, engines, cfg.cvSeeds, config) : await outOfFoldParallel(cfg.cvSeeds, dataDir, engines, config, log);
  if (kfoldFrom) log(`cmapss-rul: k-fold of seeds ${cfg.cvSeeds.join(',')} read from ${kfoldFrom.join(', ')} (same config), not rerun`);
  const validation: RulValidation = {
    kfold: summarise(engines, oofs, cfg.drawsPerSeed, cfg.cap, cfg.minCycles, cfg.folds),
    lowerBound: calibrateLowerBound(engines, oofs, cfg.cap, cfg.coverage),
    oofs,
    seconds: (Date.now() - started) / 1000,
  };
  const final = trainRul(engines, cfg, cfg.seed, 'train cmapss-rul (all engines)');
  const model = final.rul!;
  model.lower = { margin: validation.lowerBound.margin, spread: validation.lowerBound.spread };
  const leads = alertLeads(engines, validation.oofs[0]!, model.lower, SERVICE_ALERT, 60, 5);
  const e0 = engines[0]!;
  const z0 = normalise(final.spec, featureRows(e0), F);
  const ends = Array.from({ length: 64 }, (_, k) => Math.floor((k * e0.rows.length) / 64));
  return {
    model, cfg, spec: final.spec, validation, leads, sample: { x: windowsAt(z0, F, cfg.window, ends), n: ends.length },
    trainingSeconds: (Date.now() - started) / 1000, kfoldSource: kfoldFrom ? { files: kfoldFrom.map((f) => path.basename(f)) } : 'computed',
  };
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000;
const r3all = (o: object): unknown => JSON.parse(JSON.stringify(o, (_k, v: unknown) => (typeof v === 'number' ? r3(v) : v)));

export function cmapssEntry(t: TrainedCmapss): Record<string, unknown> & { id: string; file: string } {
  const { cfg, spec, model, validation } = t;
  const n = spec.normalisation;
  const lb = validation.lowerBound;
  const perMember = model.members[0]!.parameterCount();
  return {
    id: 'cmapss-rul',
    version: '2.1.0',
    task: 'rul',
    description:
      `Remaining useful life of a turbofan engine (C-MAPSS FD001: one operating condition, HPC degradation) from 14 sensors over the last ${cfg.window} cycles, ` +
      `with the spread of a ${cfg.members}-network ensemble and a lower bound, service_within, that the alert acts on (service needed within ${SERVICE_ALERT.on} cycles).`,
    file: 'cmapss-rul.onnx',
    input: { name: 'x', window: cfg.window, features: CMAPSS_FEATURES, pad: 'edge' },
    normalisation: { type: 'fixed', mean: n.mean!.map((v) => Number(v.toPrecision(8))), std: n.std!.map((v) => Number(v.toPrecision(8))) },
    clip: cfg.clip,
    outputs: [
      { name: 'rul', meaning: `predicted remaining useful life (mean of the ensemble), capped at ${cfg.cap}: early life reads as ${cfg.cap} since degradation is not yet observable`, unit: 'cycles' },
      { name: 'rul_sd', meaning: 'spread (standard deviation) of the ensemble members\' predictions: large when the networks disagree', unit: 'cycles' },
      {
        name: 'service_within',
        meaning: `max(0, rul - (${lb.margin} + ${lb.spread} x rul_sd)): the cycles an operator can count on; in k-fold validation the true RUL was at least this on ${(100 * lb.coverage_cross_checked).toFixed(1)} % of cycles (cross-checked; target ${100 * lb.target_coverage} %)`,
        unit: 'cycles',
      },
    ],
    alert: { output: 'service_within', ...SERVICE_ALERT },
    training: {
      data: 'C-MAPSS FD001 train_FD001.txt (../shared/datasets/cmapss), all 100 engines',
      target: `RUL = last cycle - cycle, capped at ${cfg.cap}`,
      architecture:
        `per sensor, means of the last ${cfg.summary.means.join('/')} cycles and least-squares slopes over the last ${cfg.summary.slopes.join('/')} (a fixed ${cfg.window * F}x${model.k} MatMul, standardised), ` +
        `then the mean of ${cfg.members} MLPs ${model.k}-${cfg.hidden.join('-')}-1 (${cfg.activation}), each on a bootstrap sample of the engines and ${cfg.stride === 1 ? 'every cycle' : `one cycle in ${cfg.stride}`}; ${cfg.members * perMember} trained parameters`,
      optimiser: `Adam lr ${cfg.lr} (x${cfg.lrDecay}/epoch), batch ${cfg.batch}, ${cfg.epochs} epochs, MSE on RUL/${cfg.cap}, input noise ${cfg.inputNoise}, seed ${cfg.seed} (+100 per member)`,
      validation: validation.kfold.protocol,
      lower_bound: `margin and spread chosen on the out-of-fold predictions of the validation (cycles with true RUL <= ${cfg.cap}) for coverage >= ${lb.target_coverage} with the least slack`,
      seconds: Math.round(t.trainingSeconds),
      kfold_run:
        t.kfoldSource === 'computed'
          ? 'in this training run (its time included in seconds)'
          : `by cmapss-cv.js --oof with this exact config, read from ${t.kfoldSource.files.join(', ')} (npm run train -- --kfold-from); seconds is the final training only`,
    },
    metrics: {
      kfold: r3all({ ...validation.kfold, protocol: undefined }),
      lower_bound: r3all(lb),
      alert_out_of_fold: { rule: `service_within <= ${SERVICE_ALERT.on} for ${SERVICE_ALERT.on_count} cycles`, seed: validation.oofs[0]!.seed, ...t.leads },
      independent_evaluation_of_v1: { data: 'official FD001 test set (100 engines), run by the project, not by this script', rmse: 15.12, phm08: 310, rmse_capped_125: 13.92, phm08_capped_125: 278 },
      published_fd001_test_rmse: { 'CNN (Babu 2016)': 18.45, 'LSTM (Zheng 2017)': 16.14, 'deep CNN (Li 2018)': 12.61, 'DA-TCN': 11.78, 'TCNN-Transformer': 11.4 },
    },
  };
}

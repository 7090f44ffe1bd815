/**
 * cmapss-rul: remaining useful life (cycles) of a turbofan from C-MAPSS FD001 sensors, one
 * prediction per cycle (edge padding until the first full window). Trained on 80 engines, the
 * 20 others (fixed seeded split) held out for validation; the shipped model is the validated one.
 */
import type { Engine } from './lib/datasets.js';
import { CMAPSS_FEATURES, engineWindows, fixedStats, splitEngines, truncationPoints, featureRows, rulTargets } from './lib/cmapss-data.js';
import type { SeriesSpec } from './lib/contract.js';
import { normalise, windowsAt } from './lib/contract.js';
import { fit } from './lib/fit.js';
import { Mlp, type Activation } from './lib/mlp.js';
import { nasaScore, rmse } from './lib/metrics.js';
import { Prng } from './lib/prng.js';
import { forwardWindows, type WindowModel } from './lib/window-model.js';

export interface RulConfig {
  window: number;
  hidden: number[];
  activation: Activation;
  cap: number;
  epochs: number;
  batch: number;
  lr: number;
  lrDecay: number;
  weightDecay: number;
  /** Networks trained with different seeds whose predictions are averaged (in the graph). */
  members: number;
  inputNoise: number;
  seed: number;
  splitSeed: number;
  holdOut: number;
  clip: number;
}

export const CMAPSS_CONFIG: RulConfig = {
  window: 50,
  hidden: [64, 32],
  activation: 'relu',
  cap: 125,
  epochs: 40,
  batch: 128,
  lr: 1e-3,
  lrDecay: 0.95,
  weightDecay: 0,
  members: 1,
  inputNoise: 0.4,
  seed: 21,
  splitSeed: 2026,
  holdOut: 20,
  clip: 10,
};

export interface RulFigures {
  rmse_last_cycle_truncated: number;
  nasa_score_truncated: number;
  truncations: number;
  rmse_all_cycles: number;
  rmse_all_cycles_rul_le_cap: number;
  rmse_full_trajectory_last_cycle: number;
}

export interface TrainedRul {
  model: WindowModel;
  cfg: RulConfig;
  spec: SeriesSpec;
  trainUnits: number[];
  validUnits: number[];
  figures: RulFigures;
  sample: { x: Float32Array; n: number };
  trainingSeconds: number;
}

export function rulSpec(cfg: RulConfig, stats: { mean: number[]; std: number[] }): SeriesSpec {
  return { window: cfg.window, pad: 'edge', normalisation: { type: 'fixed', mean: stats.mean, std: stats.std }, clip: cfg.clip };
}

/** Validation figures of per-cycle predictions `pred[engine][cycle-1]` against capped RUL. */
export function rulFigures(valid: Engine[], pred: Float32Array[], cap: number, seed: number): RulFigures {
  const cuts = truncationPoints(valid, 5, seed, 31);
  const p: number[] = [];
  const y: number[] = [];
  for (const c of cuts) {
    p.push(pred[c.engine]![c.cycle - 1]!);
    y.push(rulTargets(valid[c.engine]!, cap)[c.cycle - 1]!);
  }
  const allP: number[] = [];
  const allY: number[] = [];
  const lastP: number[] = [];
  const lastY: number[] = [];
  valid.forEach((e, i) => {
    const t = rulTargets(e, cap);
    allP.push(...pred[i]!);
    allY.push(...t);
    lastP.push(pred[i]![t.length - 1]!);
    lastY.push(0);
  });
  const capP = allP.filter((_, i) => allY[i]! < cap);
  const capY = allY.filter((v) => v < cap);
  return {
    rmse_last_cycle_truncated: rmse(p, y),
    nasa_score_truncated: nasaScore(p, y),
    truncations: cuts.length,
    rmse_all_cycles: rmse(allP, allY),
    rmse_all_cycles_rul_le_cap: rmse(capP, capY),
    rmse_full_trajectory_last_cycle: rmse(lastP, lastY),
  };
}

export function trainCmapss(engines: Engine[], cfg: RulConfig = CMAPSS_CONFIG, quiet = false): TrainedRul {
  const started = Date.now();
  const { train, valid } = splitEngines(engines, cfg.holdOut, cfg.splitSeed);
  const stats = fixedStats(train);
  const spec = rulSpec(cfg, stats);
  const data = engineWindows(train, spec, cfg.cap);
  const y = data.y.map((v) => v / cfg.cap);
  const width = cfg.window * CMAPSS_FEATURES.length;
  const members = Array.from({ length: cfg.members }, (_, k) => {
    const seed = cfg.seed + 100 * k;
    const mlp = new Mlp({ sizes: [width, ...cfg.hidden, 1], hidden: cfg.activation }, new Prng(seed));
    fit(mlp, data.x, y, data.n, {
      epochs: cfg.epochs, batch: cfg.batch, lr: cfg.lr, lrDecay: cfg.lrDecay, weightDecay: cfg.weightDecay, inputNoise: cfg.inputNoise,
      seed: seed + 1, loss: 'mse', label: `train cmapss-rul ${k + 1}/${cfg.members}`, quiet,
    });
    return mlp;
  });
  const model: WindowModel = {
    head: 'regressor', window: cfg.window, features: CMAPSS_FEATURES.length, outputName: 'rul', outputScale: cfg.cap, levelWeight: [],
    mlp: members[0]!, ensemble: members.slice(1),
  };
  const pred = valid.map((e) => {
    const z = normalise(spec, featureRows(e), CMAPSS_FEATURES.length);
    return forwardWindows(model, windowsAt(z, CMAPSS_FEATURES.length, cfg.window, e.rows.map((_, t) => t)), e.rows.length);
  });
  const figures = rulFigures(valid, pred, cfg.cap, cfg.splitSeed + 1);
  const e0 = valid[0]!;
  const z0 = normalise(spec, featureRows(e0), CMAPSS_FEATURES.length);
  const ends = Array.from({ length: 64 }, (_, k) => Math.floor((k * e0.rows.length) / 64));
  return {
    model, cfg, spec,
    trainUnits: train.map((e) => e.unit),
    validUnits: valid.map((e) => e.unit),
    figures,
    sample: { x: windowsAt(z0, CMAPSS_FEATURES.length, cfg.window, ends), n: ends.length },
    trainingSeconds: (Date.now() - started) / 1000,
  };
}

const r3 = (v: number): number => Math.round(v * 1000) / 1000;

export function cmapssEntry(t: TrainedRul): Record<string, unknown> & { id: string; file: string } {
  const { cfg, spec } = t;
  const n = spec.normalisation;
  return {
    id: 'cmapss-rul',
    version: '1.0.0',
    task: 'rul',
    description: `Remaining useful life of a turbofan engine (C-MAPSS FD001: one operating condition, HPC degradation) from 14 sensors over the last ${cfg.window} cycles; alerts when the predicted RUL falls to 30 cycles or less.`,
    file: 'cmapss-rul.onnx',
    input: { name: 'x', window: cfg.window, features: CMAPSS_FEATURES, pad: 'edge' },
    normalisation: { type: 'fixed', mean: n.mean!.map((v) => Number(v.toPrecision(8))), std: n.std!.map((v) => Number(v.toPrecision(8))) },
    clip: cfg.clip,
    outputs: [{ name: 'rul', meaning: `predicted remaining useful life, capped at ${cfg.cap} (early life reads as ${cfg.cap}: degradation is not yet observable)`, unit: 'cycles' }],
    alert: { output: 'rul', direction: 'below', on: 30, off: 40, on_count: 3, off_count: 3 },
    training: {
      data: 'C-MAPSS FD001 train_FD001.txt (../shared/datasets/cmapss)',
      split: `engines shuffled with seed ${cfg.splitSeed}: ${t.validUnits.length} held out for validation (units ${t.validUnits.join(', ')}), ${t.trainUnits.length} for training`,
      target: `RUL = last cycle - cycle, capped at ${cfg.cap}`,
      architecture: `${cfg.members === 1 ? '' : `mean of ${cfg.members} `}MLP ${cfg.window * CMAPSS_FEATURES.length}-${cfg.hidden.join('-')}-1 (${cfg.activation}${cfg.members === 1 ? '' : ', seeds differ'}), output x${cfg.cap} then ReLU, ${cfg.members * t.model.mlp.parameterCount()} parameters`,
      optimiser: `Adam lr ${cfg.lr} (x${cfg.lrDecay}/epoch), batch ${cfg.batch}, ${cfg.epochs} epochs, MSE on RUL/${cfg.cap}, input noise ${cfg.inputNoise}, seed ${cfg.seed} (+100 per member)`,
      seconds: Math.round(t.trainingSeconds * 10) / 10,
    },
    metrics: {
      held_out_engines: t.validUnits.length,
      rmse_last_cycle_truncated: r3(t.figures.rmse_last_cycle_truncated),
      nasa_score_truncated: r3(t.figures.nasa_score_truncated),
      truncations: t.figures.truncations,
      rmse_all_cycles: r3(t.figures.rmse_all_cycles),
      rmse_all_cycles_rul_below_cap: r3(t.figures.rmse_all_cycles_rul_le_cap),
      published_fd001_test_rmse: { 'CNN (Babu 2016)': 18.45, 'LSTM (Zheng 2017)': 16.14, 'deep CNN (Li 2018)': 12.61 },
    },
  };
}

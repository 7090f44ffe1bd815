/**
 * Training an anomaly window model on SKAB's training parts (the first 400 rows of each file, each
 * normalised by its own statistics, exactly as the runtime's warm-up will normalise a new key),
 * then tuning its score and alert parameters by cross-validation (tune.ts).
 */
import { normalise, type SeriesSpec } from './contract.js';
import type { SkabFile } from './datasets.js';
import { fit } from './fit.js';
import { Mlp, type Activation } from './mlp.js';
import { Prng } from './prng.js';
import { skabRaw, SKAB_TRAIN_ROWS, type CachedSeries } from './skab-eval.js';
import { tune, type LevelVariant, type TuneResult } from './tune.js';
import { forwardWindows, type Head, type WindowModel } from './window-model.js';

export interface AnomalyConfig {
  head: Extract<Head, 'autoencoder' | 'forecaster'>;
  window: number;
  hidden: number[];
  activation: Activation;
  /**
   * Level-weight variants tried by the cross-validated tuning, per feature (one value: the same
   * for all). Training the network does not depend on them: they only weigh the level term.
   */
  levelWeights: number[][];
  epochs: number;
  batch: number;
  lr: number;
  lrDecay: number;
  seed: number;
  clip: number;
}

/** Normalised windows [n][W][F] fully inside the first 400 rows of each series. */
export function trainingWindows(series: number[][][], spec: SeriesSpec, features: number): { x: Float32Array; n: number } {
  const W = spec.window;
  const per = SKAB_TRAIN_ROWS - W + 1;
  const x = new Float32Array(series.length * per * W * features);
  let n = 0;
  for (const rows of series) {
    const z = normalise(spec, rows.slice(0, SKAB_TRAIN_ROWS), features);
    for (let end = W - 1; end < SKAB_TRAIN_ROWS; end++) {
      x.set(z.subarray((end - W + 1) * features, (end + 1) * features), n * W * features);
      n++;
    }
  }
  return { x, n };
}

export function seriesSpec(cfg: AnomalyConfig): SeriesSpec {
  return { window: cfg.window, pad: 'none', normalisation: { type: 'warmup', warmup: SKAB_TRAIN_ROWS, min_std: 1e-6 }, clip: cfg.clip };
}

export function trainAnomalyModel(cfg: AnomalyConfig, series: number[][][], features: number, label: string, quiet = false): WindowModel {
  const spec = seriesSpec(cfg);
  const { x, n } = trainingWindows(series, spec, features);
  const W = cfg.window;
  const width = W * features;
  const inSize = cfg.head === 'forecaster' ? (W - 1) * features : width;
  const outSize = cfg.head === 'forecaster' ? features : width;
  let xin = x;
  let y = x;
  if (cfg.head === 'forecaster') {
    xin = new Float32Array(n * inSize);
    y = new Float32Array(n * outSize);
    for (let i = 0; i < n; i++) {
      xin.set(x.subarray(i * width, i * width + inSize), i * inSize);
      y.set(x.subarray(i * width + inSize, (i + 1) * width), i * outSize);
    }
  }
  const mlp = new Mlp({ sizes: [inSize, ...cfg.hidden, outSize], hidden: cfg.activation }, new Prng(cfg.seed));
  fit(mlp, xin, y, n, { epochs: cfg.epochs, batch: cfg.batch, lr: cfg.lr, lrDecay: cfg.lrDecay, seed: cfg.seed + 1, loss: 'mse', label, quiet });
  return { head: cfg.head, window: W, features, outputName: 'error', outputScale: 1, levelWeight: new Array<number>(features).fill(0), mlp };
}

/**
 * Raw outputs on every fault file (per channel when `perChannel`) for each level-weight variant,
 * then CV tuning; sets the model's level weights to the chosen variant.
 */
export function tuneOnSkab(model: WindowModel, cfg: AnomalyConfig, faults: SkabFile[], perChannel: boolean): TuneResult {
  const spec = seriesSpec(cfg);
  const channels = faults[0]!.rows[0]!.length;
  const variants: LevelVariant[] = cfg.levelWeights.map((lw) => {
    const levelWeight = lw.length === 1 ? new Array<number>(model.features).fill(lw[0]!) : lw;
    const m: WindowModel = { ...model, levelWeight };
    const forward = (x: Float32Array, n: number) => forwardWindows(m, x, n);
    const series: CachedSeries[][] = perChannel
      ? Array.from({ length: channels }, (_, c) => skabRaw(faults, c, spec, forward))
      : [skabRaw(faults, null, spec, forward)];
    return { levelWeight, series };
  });
  const result = tune(variants);
  model.levelWeight = result.levelWeight;
  return result;
}

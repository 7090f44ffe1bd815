/**
 * skab-pump: multivariate anomaly detector for the 8 channels of one SKAB water pump, trained on
 * the training parts (first 400 rows) of all SKAB files, each normalised by its own statistics
 * as the runtime's 400-row warm-up will do for a new pump.
 */
import { SKAB_CHANNELS, type SkabFile } from './lib/datasets.js';
import { trainAnomalyModel, tuneOnSkab, type AnomalyConfig } from './lib/anomaly-training.js';
import { SKAB_TRAIN_ROWS } from './lib/skab-eval.js';
import { errorMeaning, round, type TrainedAnomaly } from './stream-ad.js';

export const SKAB_PUMP_CONFIG: AnomalyConfig = {
  head: 'autoencoder',
  window: 16,
  hidden: [32, 4, 32],
  activation: 'relu',
  // Uniform, or without the level of the two temperatures (the water warms up during a run).
  levelWeights: [[0], [0.25], [1], [4], [1, 1, 1, 1, 0, 0, 1, 1], [4, 4, 4, 4, 0, 0, 4, 4], [1, 1, 1, 1, 0.25, 0.25, 1, 1]],
  epochs: 12,
  batch: 64,
  lr: 2e-3,
  lrDecay: 0.85,
  seed: 11,
  clip: 10,
};

export function trainSkabPump(free: SkabFile, faults: SkabFile[], cfg: AnomalyConfig = SKAB_PUMP_CONFIG, quiet = false): TrainedAnomaly {
  const started = Date.now();
  const series = [free, ...faults].map((f) => f.rows.slice(0, SKAB_TRAIN_ROWS).map((r) => Array.from(r)));
  const model = trainAnomalyModel(cfg, series, SKAB_CHANNELS.length, 'train skab-pump', quiet);
  const result = tuneOnSkab(model, cfg, faults, false);
  return { model, cfg, tuned: result, trainingSeries: series.length, trainingSeconds: (Date.now() - started) / 1000 };
}

export function skabPumpEntry(t: TrainedAnomaly): Record<string, unknown> & { id: string; file: string } {
  const { cfg, tuned } = t;
  const width = cfg.window * SKAB_CHANNELS.length;
  return {
    id: 'skab-pump',
    version: '1.0.0',
    task: 'anomaly',
    description:
      'Multivariate anomaly detector for a water pump with the 8 SKAB sensors (vibration, current, pressure, temperatures, voltage, flow): learns the pump\'s normal operation during a 400-row warm-up, then scores each row by how badly an autoencoder trained on normal pump windows reconstructs the last 16 rows.',
    file: 'skab-pump.onnx',
    input: { name: 'x', window: cfg.window, features: [...SKAB_CHANNELS], pad: 'none' },
    normalisation: { type: 'warmup', warmup: SKAB_TRAIN_ROWS, min_std: 1e-6 },
    clip: cfg.clip,
    outputs: [
      {
        name: 'error',
        meaning: errorMeaning('window (all channels)', t.model.levelWeight),
        unit: 'warm-up variances',
      },
    ],
    score: {
      output: 'error',
      ewma_halflife: tuned.chosen.score.ewma_halflife,
      calibration: { type: 'warmup-quantile', quantile: tuned.chosen.score.quantile, factor: tuned.chosen.score.factor },
    },
    alert: { output: 'score', ...tuned.chosen.alert },
    training: {
      data: 'SKAB v0.9 (../shared/datasets/skab): the first 400 rows (training part) of all 35 files, each file normalised by its own statistics',
      series: t.trainingSeries,
      architecture: `${cfg.head} MLP ${width}-${cfg.hidden.join('-')}-${width} (${cfg.activation}), level weights ${t.model.levelWeight.join('/')}, ${t.model.mlp.parameterCount()} parameters`,
      optimiser: `Adam lr ${cfg.lr} (x${cfg.lrDecay}/epoch), batch ${cfg.batch}, ${cfg.epochs} epochs, MSE, seed ${cfg.seed}`,
      tuning: `level weights (${cfg.levelWeights.map((w) => w.join('/')).join(' | ')}), ewma_halflife, factor, on_count/off_count chosen among ${tuned.trials} candidates by Matthews correlation of the alerts on SKAB test parts, leave-one-group-out over valve1/valve2/other`,
      seconds: Math.round(t.trainingSeconds * 10) / 10,
    },
    metrics: {
      skab_tuning: {
        protocol: 'one key per file; alerts vs anomaly labels on rows 401..end, pooled over the 34 fault files',
        cross_validated: round(tuned.crossValidated),
        in_sample: round(tuned.inSample),
      },
    },
  };
}

/**
 * skab-pump: multivariate anomaly detector for the 8 channels of one SKAB water pump. Its error is
 * the weighted squared level of the last 16 rows (window mean of z per channel), optionally plus
 * an autoencoder's reconstruction error (trained on the training parts, first 400 rows, of all
 * SKAB files, each normalised by its own statistics as the runtime's warm-up will do). After the
 * warm-up its baseline follows slow drift (normalisation.follow) and the noise level
 * (follow_std), and stands still while the pump is in alert (follow_in_alert), so hours of normal
 * running do not read as a fault and a fault is not learnt as normal. Its parameters are tuned by
 * replaying candidates through the runtime.
 */
import { SKAB_CHANNELS, type SkabFile } from './lib/datasets.js';
import { trainAnomalyModel, type AnomalyConfig } from './lib/anomaly-training.js';
import { exportOnnx } from './lib/onnx-export.js';
import { SKAB_TRAIN_ROWS } from './lib/skab-eval.js';
import { selectPump, type Criterion, type Selection } from './lib/pump-tuning.js';
import { replayCandidates, type Baseline, type CandidateResult, type RuntimeCandidate } from './lib/pump-runtime-tuning.js';
import type { WindowModel } from './lib/window-model.js';
import { driftingPump, DRIFT_SD_PER_1000 } from './lib/pump-drift.js';
import { round } from './stream-ad.js';

export interface PumpConfig extends AnomalyConfig {
  /**
   * Graph variants: per-feature weights of the window-level term (window-model.ts) and whether the
   * autoencoder's reconstruction error is added (1) or left out of the graph (0).
   */
  graphs: { windowLevel: number[]; reconstruction: 0 | 1 }[];
  /** Baselines tried (null: frozen after warm-up, as in v1.0.0). */
  baselines: (Baseline | null)[];
  ewmaHalflives: number[];
  factors: number[];
  counts: [number, number][];
  /** The anomaly-free run may raise at most this many alerts per 1,000 rows (issue 11) ... */
  maxFreeRaisesPer1000: number;
  /** ... and be in alert on at most this share (%) of its rows: an alert that never clears raises only once. */
  maxFreeAlertPct: number;
  /** What the leave-one-group-out selection maximises among admissible candidates. */
  criterion: Criterion;
}

const every = (h: number): number[] => new Array<number>(SKAB_CHANNELS.length).fill(h);

// Vibration (the two accelerometers) and flow: the channels SKAB's faults move. Temperatures drift
// with the warming water, current, pressure and voltage barely move (MODEL_CARD.md, v1.2.0).
const ACC_FLOW2 = [1, 1, 0, 0, 0, 0, 0, 2];
const ACC_FLOW3 = [1, 1, 0, 0, 0, 0, 0, 3];

export const SKAB_PUMP_CONFIG: PumpConfig = {
  head: 'autoencoder',
  window: 16,
  hidden: [32, 4, 32],
  activation: 'relu',
  levelWeights: [[0]],
  // The window level alone, or with the reconstruction error (the level term x8 so it weighs about as
  // much as the reconstruction error of a normal window).
  graphs: [
    { windowLevel: ACC_FLOW3, reconstruction: 0 },
    { windowLevel: ACC_FLOW2, reconstruction: 0 },
    { windowLevel: ACC_FLOW3.map((v) => 8 * v), reconstruction: 1 },
  ],
  // A baseline that follows normal drift (at most 2 standard deviations x ln 2 / 100 or / 50 per
  // row; the window level sees a lag of a fraction of a deviation, so it has to follow closely: a
  // drift of 4 deviations per 1,000 rows must stay quiet, test/unit/pump-rul-models.test.ts) and the
  // noise level (follow_std: vibration gets noisier over hours of normal running), stands still
  // while the pump is in alert, and re-centres after 450 rows in alert. Narrowed from 1,740
  // variants of an offline prototype of these rules (MODEL_CARD.md, skab-pump v1.2.0).
  baselines: [100, 50].flatMap((h) => [300, 500].map((std) => ({ follow: every(h), follow_clip: 2, follow_in_alert: 0, relearn_after: 450, follow_std: std }))),
  ewmaHalflives: [0],
  factors: [2.5, 3],
  counts: [[5, 20], [10, 20]],
  // Issue 11's limit is 1 per 1,000 rows; selecting at 0.9 keeps the shipped model one alert (of 9,005
  // rows) inside it instead of on the edge (at 1: 9 raises, 0.999 per 1,000).
  maxFreeRaisesPer1000: 0.9,
  maxFreeAlertPct: 30,
  criterion: 'f1',
  epochs: 12,
  batch: 64,
  lr: 2e-3,
  lrDecay: 0.85,
  seed: 11,
  clip: 10,
};

export interface TrainedPump {
  model: WindowModel;
  cfg: PumpConfig;
  candidates: RuntimeCandidate[];
  chosen: RuntimeCandidate;
  selection: Selection;
  results: CandidateResult[];
  trainingSeries: number;
  trainingSeconds: number;
}

function candidatesOf(cfg: PumpConfig): RuntimeCandidate[] {
  const out: RuntimeCandidate[] = [];
  cfg.graphs.forEach((_, graph) => {
    for (const baseline of cfg.baselines)
      for (const h of cfg.ewmaHalflives)
        for (const factor of cfg.factors)
          for (const [onCount, offCount] of cfg.counts)
            out.push({ graph, baseline, score: { ewma_halflife: h, quantile: 0.99, factor }, alert: { direction: 'above', on: 0.5, off: 0.4, on_count: onCount, off_count: offCount } });
  });
  return out;
}

/** The manifest entry (without sha256) of the model with one candidate's parameters. */
function pumpEntry(cfg: PumpConfig, c: RuntimeCandidate): Record<string, unknown> & { id: string; file: string } {
  const g = cfg.graphs[c.graph]!;
  return {
    id: 'skab-pump',
    version: '1.2.0',
    task: 'anomaly',
    description:
      "Multivariate anomaly detector for a water pump with the 8 SKAB sensors (vibration, current, pressure, temperatures, voltage, flow): learns the pump's normal operation during a 400-row warm-up, then scores each row by how far the last 16 rows of vibration and flow sit from it" +
      (g.reconstruction ? ' and how badly an autoencoder trained on normal pump windows reconstructs them' : '') +
      (c.baseline ? ', against a baseline that follows slow normal drift and noise and stands still while the pump is in alert.' : '.'),
    file: 'skab-pump.onnx',
    input: { name: 'x', window: cfg.window, features: [...SKAB_CHANNELS], pad: 'none' },
    normalisation: { type: 'warmup', warmup: SKAB_TRAIN_ROWS, min_std: 1e-6, ...(c.baseline ?? {}) },
    clip: cfg.clip,
    outputs: [{ name: 'error', meaning: pumpErrorMeaning(g), unit: 'warm-up variances' }],
    score: { output: 'error', ewma_halflife: c.score.ewma_halflife, calibration: { type: 'warmup-quantile', quantile: c.score.quantile, factor: c.score.factor } },
    alert: { output: 'score', ...c.alert },
  };
}

function pumpErrorMeaning(g: PumpConfig['graphs'][number]): string {
  const level = `sum over channels of weight (${g.windowLevel.join('/')}, in input order) x the squared mean of the window's normalised values (its level against the baseline)`;
  return g.reconstruction ? `mean squared reconstruction error of the normalised window plus ${level}` : level;
}

export async function trainSkabPump(free: SkabFile, faults: SkabFile[], cfg: PumpConfig = SKAB_PUMP_CONFIG, quiet = false, log: (s: string) => void = () => undefined): Promise<TrainedPump> {
  const started = Date.now();
  const series = [free, ...faults].map((f) => f.rows.slice(0, SKAB_TRAIN_ROWS).map((r) => Array.from(r)));
  const model = trainAnomalyModel(cfg, series, SKAB_CHANNELS.length, 'train skab-pump', quiet);
  const variants = cfg.graphs.map((g): WindowModel => ({ ...model, windowLevelWeight: g.windowLevel, reconstructionWeight: g.reconstruction }));
  const graphs = variants.map((m) => exportOnnx(m, { name: 'skab-pump', doc: 'tuning candidate' }));
  const candidates = candidatesOf(cfg);
  log(`skab-pump: replaying ${candidates.length} candidates through the runtime`);
  const results = await replayCandidates(graphs, (c) => pumpEntry(cfg, c), candidates, faults, free, log, driftingPump(free));
  const selection = selectPump(results, cfg.maxFreeRaisesPer1000, cfg.maxFreeAlertPct, cfg.criterion);
  const chosen = candidates[selection.chosen]!;
  const shipped = variants[chosen.graph]!;
  return { model: shipped, cfg, candidates, chosen, selection, results, trainingSeries: series.length, trainingSeconds: (Date.now() - started) / 1000 };
}

export function skabPumpEntry(t: TrainedPump): Record<string, unknown> & { id: string; file: string } {
  const { cfg, selection, chosen } = t;
  const width = cfg.window * SKAB_CHANNELS.length;
  const describe = (c: RuntimeCandidate) => ({ graph: cfg.graphs[c.graph]!, baseline: c.baseline ?? 'frozen', score: c.score, alert: c.alert });
  const g = cfg.graphs[chosen.graph]!;
  return {
    ...pumpEntry(cfg, chosen),
    training: {
      data: 'SKAB v0.9 (../shared/datasets/skab): the first 400 rows (training part) of all 35 files, each file normalised by its own statistics',
      series: t.trainingSeries,
      architecture: g.reconstruction
        ? `window level (weights ${g.windowLevel.join('/')}) plus ${cfg.head} MLP ${width}-${cfg.hidden.join('-')}-${width} (${cfg.activation}), ${t.model.mlp.parameterCount()} parameters`
        : `window level only (weights ${g.windowLevel.join('/')}, no network: the autoencoder candidates, ${cfg.head} MLP ${width}-${cfg.hidden.join('-')}-${width}, lost the selection)`,
      optimiser: `Adam lr ${cfg.lr} (x${cfg.lrDecay}/epoch), batch ${cfg.batch}, ${cfg.epochs} epochs, MSE, seed ${cfg.seed}`,
      tuning:
        `${t.candidates.length} candidates (graphs ${cfg.graphs.map((x) => `window level ${x.windowLevel.join('/')}${x.reconstruction ? ' + reconstruction' : ''}`).join(' | ')}; baselines ${cfg.baselines.map((b) => (b ? `follow ${b.follow[0]} clip ${b.follow_clip} in-alert ${b.follow_in_alert}${b.relearn_after ? ` relearn after ${b.relearn_after}` : ''}${b.follow_std ? ` std ${b.follow_std}` : ''}` : 'frozen')).join(' | ')}; ` +
        `factor ${cfg.factors.join('/')}; on/off counts ${cfg.counts.map((c) => c.join('/')).join(', ')}), each replayed through the runtime over SKAB; admissible (${selection.admissible}): at most ${cfg.maxFreeRaisesPer1000} alert raised per 1,000 rows and at most ${cfg.maxFreeAlertPct} % of rows in alert on anomaly-free.csv, no alert on a synthetic pump at anomaly-free.csv's warm-up levels drifting ${DRIFT_SD_PER_1000} noise sd per 1,000 rows (lib/pump-drift.ts); ` +
        `among those, chosen by ${cfg.criterion === 'f1' ? 'F1' : 'Matthews correlation'} of the alerts on SKAB test parts, leave-one-group-out over valve1/valve2/other`,
      seconds: Math.round(t.trainingSeconds * 10) / 10,
    },
    metrics: {
      skab_tuning: {
        protocol: 'one key per file; alerts vs anomaly labels on rows 401..end, pooled over the 34 fault files; every candidate replayed through agent/inference',
        cross_validated: round({ ...selection.crossValidated }),
        cross_validated_choices: Object.fromEntries(Object.entries(selection.crossValidated.perGroup).map(([g, i]) => [g, describe(t.candidates[i]!)])),
        in_sample: round({ ...selection.inSample }),
        anomaly_free: round({ ...selection.free }),
      },
    },
  };
}

/**
 * stream-ad 2: a streaming anomaly detector for any single numeric channel that keeps learning
 * for the stream's whole life (agent/inference/README.md, normalisation "online", calibration
 * "onset-tail").
 *
 * The learned part is a small forecaster: from the last W-1 readings, normalised by the series'
 * own online baseline exactly as the runtime normalises them (the same `observe` code), it
 * predicts the newest one. Its graph outputs the squared surprise of the newest reading in
 * baseline variances: residualWeight * (z - forecast)² + z². Trained generic: every SKAB channel
 * of every file's training part (and the whole anomaly-free run) is one series; no per-sensor
 * training. The statistical parameters (half-lives, peak window, alert threshold) were chosen on
 * the NAB tuning half with `node dist/scripts/eval/nab-sweep.js` (SKAB per channel as a side
 * condition); MODEL_CARD.md has what was tried with figures.
 */
import { newBaseline, observe, type EventParams, type OnlineParams } from '../../agent/inference/online-baseline.js';
import { SKAB_CHANNELS, type SkabFile } from './lib/datasets.js';
import { fit } from './lib/fit.js';
import { Mlp } from './lib/mlp.js';
import { Prng } from './lib/prng.js';
import { SKAB_TRAIN_ROWS } from './lib/skab-eval.js';
import type { WindowModel } from './lib/window-model.js';
import type { AnomalyConfig } from './lib/anomaly-training.js';
import type { TuneResult } from './lib/tune.js';

export const STREAM_AD_ONLINE: OnlineParams = {
  warmup: 150,
  halflife: 500,
  robust_clip: 20,
  min_std: 1e-9,
  daily_bins: 24,
  bin_halflife: 30,
  bin_min: 10,
  seasonal_ratio: 0.3,
};

export const STREAM_AD_SCORE = {
  type: 'onset-tail',
  decades: 20,
  peak_window: 30,
  range_margin: 0.3,
  range_after: 600,
  range_score: 0.9,
  stuck_min_run: 10,
  stuck_factor: 2,
  stuck_score: 0.9,
  /** The tail score judged against the stream's own history of tail scores (stream-ad 2.1; MODEL_CARD.md). */
  likelihood: { halflife: 2000, short: 3, weight: 0.5 },
  /**
   * Context novelty (2.3, agent/inference/context-novelty.ts): the share of the last 1..3 readings'
   * 16-bucket contexts never seen lately, through its own likelihood stage, as a second surprise
   * (max of the two) once 300 rows have been learned: a change of pattern without a change of level.
   */
  context: {
    buckets: 16,
    order: 3,
    table: 4096,
    memory: 4096,
    min_count: 1,
    range_halflife: 5000,
    min_moves: 16,
    likelihood: { halflife: 2000, short: 3, weight: 0.5 },
    scale: 1,
    after: 300,
  },
  /**
   * Held while away from the pre-onset level, 100 to 450 rows; also raised on a sudden 1.5-deviation
   * shift past the range the series has swung over lately (2.2: healthy periodic sensors stay quiet),
   * once the rule has watched 150 rows (agent/inference/onset-alert.ts).
   */
  hold: {
    departure_halflife: 10,
    min_rows: 100,
    max_rows: 450,
    shift: { z: 1.5, rows: 5, low: 0.75, within: 150, range_halflife: 1000, range_margin: 0.35, after: 150 },
  },
} as const;

/** Raised by an onset (the score) or a sudden shift, cleared after 10 rows back near the pre-onset level (agent/inference/onset-alert.ts). */
export const STREAM_AD_ALERT = { output: 'score', direction: 'above', on: 0.5, off: 0.035, on_count: 1, off_count: 10, clear_output: 'departure' } as const;

export const STREAM_AD_CONFIG = {
  window: 16,
  hidden: [16, 8],
  epochs: 6,
  batch: 64,
  lr: 2e-3,
  lrDecay: 0.85,
  seed: 1,
  clip: 10,
  /** Weight of the forecast residual next to the level term (chosen on the NAB tuning half). */
  residualWeight: 0.05,
};

export interface TrainedStreamAd {
  model: WindowModel;
  trainingSeries: number;
  trainingWindows: number;
  trainingSeconds: number;
  /** Windows of real data for the export check. */
  sample: { x: Float32Array; n: number };
}

/**
 * Windows [n][W] of one series normalised as the runtime does (online-baseline.ts): each window
 * ends at a row after the warm-up and is normalised by the baseline as it stood at that row.
 */
export function onlineWindows(values: ArrayLike<number>, window: number, clip: number, params: OnlineParams = STREAM_AD_ONLINE): Float32Array[] {
  const events: EventParams = { range_margin: 0, range_after: 0, stuck_min_run: 0, stuck_factor: 0 };
  const b = newBaseline(params);
  const out: Float32Array[] = [];
  for (let t = 0; t < values.length; t++) {
    const obs = observe(b, params, events, values[t]!, t * 1000);
    if (t < params.warmup) continue;
    const w = new Float32Array(window);
    for (let i = 0; i < window; i++) {
      const z = (values[t - window + 1 + i]! - obs.mean) / obs.scale;
      w[i] = z > clip ? clip : z < -clip ? -clip : z;
    }
    out.push(w);
  }
  return out;
}

export function trainStreamAd(free: SkabFile, faults: SkabFile[], quiet = false): TrainedStreamAd {
  const started = Date.now();
  const cfg = STREAM_AD_CONFIG;
  const W = cfg.window;
  const windows: Float32Array[] = [];
  let series = 0;
  for (const f of [free, ...faults]) {
    const rows = f === free ? f.rows.length : SKAB_TRAIN_ROWS;
    for (let c = 0; c < SKAB_CHANNELS.length; c++) {
      windows.push(...onlineWindows(f.rows.slice(0, rows).map((r) => r[c]!), W, cfg.clip));
      series++;
    }
  }
  const n = windows.length;
  const past = W - 1;
  const x = new Float32Array(n * past);
  const y = new Float32Array(n);
  windows.forEach((w, i) => {
    x.set(w.subarray(0, past), i * past);
    y[i] = w[past]!;
  });
  const mlp = new Mlp({ sizes: [past, ...cfg.hidden, 1], hidden: 'relu' }, new Prng(cfg.seed));
  fit(mlp, x, y, n, { epochs: cfg.epochs, batch: cfg.batch, lr: cfg.lr, lrDecay: cfg.lrDecay, seed: cfg.seed + 1, loss: 'mse', label: 'train stream-ad', quiet });
  const model: WindowModel = { head: 'forecaster', window: W, features: 1, outputName: 'error', outputScale: 1, levelWeight: [1], residualWeight: cfg.residualWeight, mlp };
  const sampleWindows = onlineWindows(faults[0]!.rows.map((r) => r[0]!), W, cfg.clip);
  const pick: Float32Array[] = [];
  for (let k = 0; k < 64; k++) pick.push(sampleWindows[Math.floor((sampleWindows.length * k) / 64)]!);
  const sx = new Float32Array(pick.length * W);
  pick.forEach((w, i) => sx.set(w, i * W));
  return { model, trainingSeries: series, trainingWindows: n, trainingSeconds: (Date.now() - started) / 1000, sample: { x: sx, n: pick.length } };
}

export function streamAdEntry(t: TrainedStreamAd): Record<string, unknown> & { id: string; file: string } {
  const cfg = STREAM_AD_CONFIG;
  return {
    id: 'stream-ad',
    version: '2.3.0',
    task: 'anomaly',
    description:
      "Streaming anomaly detector for any single numeric channel that keeps learning for the stream's life: an online baseline (level, resolution, hour of day, range, repeats) and a learned forecaster of the newest reading; the score is the tail probability of the present against the stream's own running distribution, judged against the stream's own history of surprises (a likelihood), or the novelty of the present short sequence of readings against the contexts seen lately (a change of pattern), spiking at an onset and falling back; the alert is held while the present stays away from the pre-onset level.",
    file: 'stream-ad.onnx',
    input: { name: 'x', window: cfg.window, features: ['value'], pad: 'none' },
    normalisation: { type: 'online', ...STREAM_AD_ONLINE },
    clip: cfg.clip,
    outputs: [
      {
        name: 'error',
        meaning: `squared surprise of the newest reading: z² + ${cfg.residualWeight} x (z - forecast from the previous ${cfg.window - 1})², z normalised by the series' online baseline`,
        unit: 'baseline variances',
      },
    ],
    score: { output: 'error', ewma_halflife: 0, calibration: structuredClone(STREAM_AD_SCORE) },
    alert: { ...STREAM_AD_ALERT },
    training: {
      data: 'SKAB v0.9 (../shared/datasets/skab): the first 400 rows (training part) of the 34 fault files and the whole anomaly-free run, each of the 8 channels a separate series normalised by its own online baseline',
      series: t.trainingSeries,
      windows: t.trainingWindows,
      architecture: `forecaster MLP ${cfg.window - 1}-${cfg.hidden.join('-')}-1 (relu), ${t.model.mlp.parameterCount()} parameters; error = z² + ${cfg.residualWeight} x residual²`,
      optimiser: `Adam lr ${cfg.lr} (x${cfg.lrDecay}/epoch), batch ${cfg.batch}, ${cfg.epochs} epochs, MSE, seed ${cfg.seed}`,
      tuning: 'online baseline, onset score and alert parameters chosen on the NAB tuning half (files whose sha256 of category/name starts below 0x80); the sudden-shift range (2.2) on healthy sines and SKAB per channel, then checked on that half; the context novelty (2.3) on the tuning half, the check half scored once; see MODEL_CARD.md',
      seconds: Math.round(t.trainingSeconds * 10) / 10,
    },
    metrics: {},
  };
}

// Shared with skab-pump.ts (the window autoencoder of stream-ad 1, kept for the multivariate model).

export interface TrainedAnomaly {
  model: WindowModel;
  cfg: AnomalyConfig;
  tuned: TuneResult;
  trainingSeries: number;
  trainingSeconds: number;
}

/** What the error output means, given the level weights the tuning chose. */
export function errorMeaning(what: string, levelWeight: number[]): string {
  const base = `mean squared reconstruction error of the warm-up-normalised ${what}`;
  if (levelWeight.every((w) => w === 0)) return `${base}; small for windows like the warm-up's`;
  const same = levelWeight.every((w) => w === levelWeight[0]);
  return `${base} plus ${same ? `${levelWeight[0]} x ` : 'per-feature weights x '}its mean squared level (z², distance from the warm-up mean)`;
}

export function round(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (typeof v === 'number') out[k] = Math.round(v * 1000) / 1000;
  return out;
}

/**
 * The model contract of agent/inference/README.md applied offline to one key's whole series, for
 * tuning calibration and hysteresis during training (thousands of trials; the runtime is for
 * what ships and is what `npm run eval` measures). Follows README §1-§7 step by step.
 */

export interface Normalisation {
  type: 'warmup' | 'fixed';
  warmup?: number;
  min_std?: number;
  mean?: number[];
  std?: number[];
  /** Per-feature half-lives (rows) of the drift-following baseline after warm-up; 0 = frozen. */
  follow?: number[];
  /** z clip of the baseline update (default: the spec's clip). */
  follow_clip?: number;
}

export interface ScoreSpec {
  ewma_halflife: number;
  quantile: number;
  factor: number;
}

export interface AlertSpec {
  direction: 'above' | 'below';
  on: number;
  off: number;
  on_count: number;
  off_count: number;
}

export interface SeriesSpec {
  window: number;
  pad: 'none' | 'edge';
  normalisation: Normalisation;
  clip: number;
}

/** Forward pass over n windows [n][W][F] of normalised values. */
export type Forward = (windows: Float32Array, n: number) => Float32Array;

/** §1: normalised, clipped rows (frozen warm-up statistics or fixed ones). */
export function normalise(spec: SeriesSpec, rows: ArrayLike<number>[], features: number): Float32Array {
  const T = rows.length;
  const mean = new Float64Array(features);
  const std = new Float64Array(features);
  const n = spec.normalisation;
  if (n.type === 'fixed') {
    for (let f = 0; f < features; f++) {
      mean[f] = n.mean![f]!;
      std[f] = n.std![f]!;
    }
  } else {
    const w = Math.min(n.warmup!, T);
    for (let t = 0; t < w; t++) for (let f = 0; f < features; f++) mean[f]! += rows[t]![f]!;
    for (let f = 0; f < features; f++) mean[f]! /= w;
    for (let t = 0; t < w; t++)
      for (let f = 0; f < features; f++) {
        const d = rows[t]![f]! - mean[f]!;
        std[f]! += d * d;
      }
    for (let f = 0; f < features; f++) std[f] = Math.max(Math.sqrt(std[f]! / w), n.min_std ?? 1e-6);
  }
  // agent/inference/baseline.ts: after warm-up, the mean follows each row's clipped z.
  const rates = n.type === 'warmup' && n.follow ? n.follow.map((h) => (h > 0 ? 1 - 2 ** (-1 / h) : 0)) : null;
  const warm = n.type === 'warmup' ? n.warmup! : 0;
  const fc = n.follow_clip ?? spec.clip;
  const z = new Float32Array(T * features);
  for (let t = 0; t < T; t++)
    for (let f = 0; f < features; f++) {
      const v = (rows[t]![f]! - mean[f]!) / std[f]!;
      const c = Math.fround(Math.max(-spec.clip, Math.min(spec.clip, v)));
      z[t * features + f] = c;
      if (rates && t >= warm && rates[f]! > 0) mean[f]! += rates[f]! * std[f]! * Math.max(-fc, Math.min(fc, c));
    }
  return z;
}

/** §2: the windows ending at rows `ends` (edge padding before the first row). */
export function windowsAt(z: Float32Array, features: number, window: number, ends: number[]): Float32Array {
  const out = new Float32Array(ends.length * window * features);
  ends.forEach((end, k) => {
    for (let j = 0; j < window; j++) {
      const t = Math.max(0, end - window + 1 + j);
      out.set(z.subarray(t * features, (t + 1) * features), (k * window + j) * features);
    }
  });
  return out;
}

/** Quantile with linear interpolation between order statistics (README §3). */
export function quantile(values: ArrayLike<number>, q: number): number {
  const s = Float64Array.from(values).sort();
  if (s.length === 0) return NaN;
  const pos = q * (s.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.min(lo + 1, s.length - 1);
  return s[lo]! + (s[hi]! - s[lo]!) * (pos - lo);
}

export interface RawSeries {
  /** Model output per row (NaN where the row has no verdict and no calibration window). */
  output: Float32Array;
  /** First row with a verdict. */
  firstVerdict: number;
  /** Rows whose windows calibrate (warm-up), as [from, to). */
  calibration: [number, number];
}

/** Runs the model once over every window of a series that calibration or a verdict needs. */
export function rawOutputs(spec: SeriesSpec, rows: ArrayLike<number>[], features: number, forward: Forward, batch = 1024): RawSeries {
  const T = rows.length;
  const z = normalise(spec, rows, features);
  const warm = spec.normalisation.type === 'warmup' ? spec.normalisation.warmup! : 0;
  const firstWindow = spec.pad === 'edge' ? 0 : spec.window - 1;
  const from = Math.min(firstWindow, T);
  const output = new Float32Array(T).fill(NaN);
  for (let start = from; start < T; start += batch) {
    const ends: number[] = [];
    for (let t = start; t < Math.min(T, start + batch); t++) ends.push(t);
    const y = forward(windowsAt(z, features, spec.window, ends), ends.length);
    output.set(y, start);
  }
  return { output, firstVerdict: Math.max(warm, from), calibration: [from, Math.min(warm, T)] };
}

export interface Verdicts {
  firstVerdict: number;
  /** Per row: the value the alert compares (score or output), NaN without verdict. */
  value: Float32Array;
  alert: Uint8Array;
}

/** §3-§6 on precomputed raw outputs: calibration, smoothing, score, hysteresis. */
export function verdicts(raw: RawSeries, score: ScoreSpec | null, alert: AlertSpec): Verdicts {
  const T = raw.output.length;
  const value = new Float32Array(T).fill(NaN);
  if (score) {
    const a = score.ewma_halflife > 0 ? 1 - 2 ** (-1 / score.ewma_halflife) : 1;
    let s = NaN;
    const calib: number[] = [];
    const smooth = (e: number): number => (s = Number.isNaN(s) ? e : a * e + (1 - a) * s);
    for (let t = raw.calibration[0]; t < raw.calibration[1]; t++) calib.push(smooth(raw.output[t]!));
    const q = Math.max(quantile(calib, score.quantile) * score.factor, 1e-12);
    for (let t = raw.firstVerdict; t < T; t++) value[t] = 1 - 2 ** (-smooth(raw.output[t]!) / q);
  } else {
    for (let t = raw.firstVerdict; t < T; t++) value[t] = raw.output[t]!;
  }
  const out = new Uint8Array(T);
  let on = false;
  let run = 0;
  const above = alert.direction === 'above';
  for (let t = raw.firstVerdict; t < T; t++) {
    const v = value[t]!;
    if (!on) {
      run = (above ? v >= alert.on : v <= alert.on) ? run + 1 : 0;
      if (run >= alert.on_count) {
        on = true;
        run = 0;
      }
    } else {
      run = (above ? v < alert.off : v > alert.off) ? run + 1 : 0;
      if (run >= alert.off_count) {
        on = false;
        run = 0;
      }
    }
    out[t] = on ? 1 : 0;
  }
  return { firstVerdict: raw.firstVerdict, value, alert: out };
}

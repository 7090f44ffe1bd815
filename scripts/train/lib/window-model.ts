/**
 * The shipped model shapes: an MLP over a flattened window [W, F] with a head that decides what
 * the graph outputs. The JS forward pass here and the ONNX graph of onnx-export.ts compute the
 * same thing, which export checks on real windows.
 *
 * - `autoencoder`: output `error` [N] = mean over the window of (z - reconstruction(z))²
 *                  + mean over the window of levelWeight[f] * z².
 * - `forecaster`:  output `error` [N] = mean over features of residualWeight * (z_last - forecast(z_1..W-1))²
 *                  + mean over features of levelWeight[f] * z_last² (residualWeight defaults to 1).
 * The level term measures how far the window sits from the key's warm-up behaviour (z is
 * normalised by the warm-up statistics): networks trained on normal windows reconstruct a
 * shifted level almost perfectly, so without it a step change (a closed valve) goes unseen.
 * - `windowLevelWeight` (autoencoder only, optional): adds sum over features of
 *                  windowLevelWeight[f] * (mean over the window of z_f)²: the level of the last W
 *                  rows, whose noise is W times smaller than one row's z², so a shift of a fraction
 *                  of a standard deviation that lasts shows while single noisy rows do not.
 *                  `reconstructionWeight` 0 leaves the network out of the graph (the level alone).
 * - `regressor`:   output [N, 1] = max(0, outputScale * mean over members of mlp_k(z)) (e.g.
 *                  remaining useful life in cycles); members = mlp plus `ensemble`.
 */
import { Mlp } from './mlp.js';

export type Head = 'autoencoder' | 'forecaster' | 'regressor';

export interface WindowModel {
  head: Head;
  window: number;
  features: number;
  /** Name of the graph's single output. */
  outputName: string;
  /** Multiplies the regressor's output (the network learns a scaled target). */
  outputScale: number;
  /** Per feature, weight of the level term in the error heads (0: pure reconstruction/forecast error). */
  levelWeight: number[];
  /** Autoencoder only: per feature, weight of the squared window mean of z (see above). */
  windowLevelWeight?: number[];
  /** Autoencoder only: weight of the reconstruction error (default 1; 0: no network in the graph). */
  reconstructionWeight?: number;
  /** Forecaster only: weight of the squared forecast residual (default 1). */
  residualWeight?: number;
  mlp: Mlp;
  /** Regressor only: further members whose outputs are averaged with mlp's (seed ensemble). */
  ensemble?: Mlp[];
}

/** Runs the model on n windows laid out [n][W][F]; one value per window. */
export function forwardWindows(model: WindowModel, windows: Float32Array, n: number): Float32Array {
  const { window: w, features: f, mlp } = model;
  const width = w * f;
  if (model.head !== 'regressor' && model.levelWeight.length !== f) throw new Error(`levelWeight needs ${f} values, one per feature`);
  if (windows.length !== n * width) throw new Error(`expected ${n}x${w}x${f} values, got ${windows.length}`);
  const out = new Float32Array(n);
  if (model.head === 'autoencoder') {
    const rw = model.reconstructionWeight ?? 1;
    const rec = rw === 0 ? null : mlp.forward(windows, n);
    const wl = model.windowLevelWeight;
    const m = new Float64Array(f);
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let i = 0; i < width; i++) {
        const z = windows[b * width + i]!;
        const d = rec ? z - rec[b * width + i]! : 0;
        s += rw * d * d + model.levelWeight[i % f]! * z * z;
      }
      let e = s / width;
      if (wl) {
        m.fill(0);
        for (let i = 0; i < width; i++) m[i % f]! += windows[b * width + i]! / w;
        for (let j = 0; j < f; j++) e += wl[j]! * m[j]! * m[j]!;
      }
      out[b] = e;
    }
  } else if (model.head === 'forecaster') {
    const past = (w - 1) * f;
    const x = new Float32Array(n * past);
    for (let b = 0; b < n; b++) x.set(windows.subarray(b * width, b * width + past), b * past);
    const pred = mlp.forward(x, n);
    const rw = model.residualWeight ?? 1;
    for (let b = 0; b < n; b++) {
      let s = 0;
      for (let j = 0; j < f; j++) {
        const z = windows[b * width + past + j]!;
        const d = pred[b * f + j]! - z;
        s += rw * d * d + model.levelWeight[j]! * z * z;
      }
      out[b] = s / f;
    }
  } else {
    const members = [mlp, ...(model.ensemble ?? [])];
    const sum = new Float64Array(n);
    for (const m of members) {
      const y = m.forward(windows, n);
      for (let b = 0; b < n; b++) sum[b]! += y[b]!;
    }
    // Float32 rounding at the same points as the graph: Sum, then Mul by scale / members.
    const scale = Math.fround(model.outputScale / members.length);
    for (let b = 0; b < n; b++) out[b] = Math.max(0, Math.fround(sum[b]!) * scale);
  }
  return out;
}

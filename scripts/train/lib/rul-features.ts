/**
 * Fixed linear summaries of a window [W, F] for the RUL model: per sensor, the mean of the last
 * k rows and the least-squares slope over the last k rows, for a few k. C-MAPSS sensors are noisy
 * (a single cycle says little) and 100 engines are few: a network over the raw 700 values
 * overfits them, while these ~100 smoothed levels and trends carry the degradation. The matrix
 * becomes the graph's first MatMul, so the runtime still feeds plain windows.
 */

export interface SummarySpec {
  /** Averaging spans (rows back from the newest), each <= window. */
  means: number[];
  /** Slope spans, each in [2, window]. */
  slopes: number[];
}

/** Projection [W*F][K] (row-major, so features = flat · P) and the feature names. */
export function summaryProjection(window: number, features: number, spec: SummarySpec): { p: Float32Array; k: number; names: string[] } {
  for (const s of [...spec.means, ...spec.slopes]) if (!Number.isInteger(s) || s < 1 || s > window) throw new Error(`span ${s} must be an integer in [1, ${window}]`);
  for (const s of spec.slopes) if (s < 2) throw new Error(`slope span ${s} must be >= 2`);
  const perSensor = spec.means.length + spec.slopes.length;
  const k = perSensor * features;
  const p = new Float32Array(window * features * k);
  const names: string[] = [];
  for (let f = 0; f < features; f++) {
    let col = f * perSensor;
    for (const span of spec.means) {
      for (let j = window - span; j < window; j++) p[(j * features + f) * k + col] = 1 / span;
      names.push(`f${f}_mean${span}`);
      col++;
    }
    for (const span of spec.slopes) {
      // Least-squares slope over rows t = 0..span-1 (oldest to newest), in normalised units per 10 rows.
      const tMean = (span - 1) / 2;
      let sxx = 0;
      for (let t = 0; t < span; t++) sxx += (t - tMean) ** 2;
      for (let t = 0; t < span; t++) p[((window - span + t) * features + f) * k + col] = (10 * (t - tMean)) / sxx;
      names.push(`f${f}_slope${span}`);
      col++;
    }
  }
  return { p, k, names };
}

/** features[n][K] = windows[n][W*F] · P, summed in float64 (P is sparse: each column touches its span only). */
export function project(windows: Float32Array, n: number, p: Float32Array, k: number): Float32Array {
  const width = p.length / k;
  if (windows.length !== n * width) throw new Error(`project: ${windows.length} values are not ${n} windows of ${width}`);
  const cols: { at: Int32Array; w: Float64Array }[] = [];
  for (let c = 0; c < k; c++) {
    const at: number[] = [];
    const w: number[] = [];
    for (let i = 0; i < width; i++) if (p[i * k + c] !== 0) (at.push(i), w.push(p[i * k + c]!));
    cols.push({ at: Int32Array.from(at), w: Float64Array.from(w) });
  }
  const out = new Float32Array(n * k);
  for (let b = 0; b < n; b++) {
    const base = b * width;
    for (let c = 0; c < k; c++) {
      const { at, w } = cols[c]!;
      let s = 0;
      for (let j = 0; j < at.length; j++) s += windows[base + at[j]!]! * w[j]!;
      out[b * k + c] = s;
    }
  }
  return out;
}

/** Linear interpolation between order statistics (Hyndman & Fan type 7, numpy's default). */
export function quantile(values: readonly number[], q: number): number {
  if (values.length === 0) throw new Error('quantile of no values');
  const sorted = [...values].sort((a, b) => a - b);
  const h = (sorted.length - 1) * q;
  const lo = Math.floor(h);
  const hi = Math.min(lo + 1, sorted.length - 1);
  return sorted[lo]! + (h - lo) * (sorted[hi]! - sorted[lo]!);
}

/** Exponentially weighted moving average with a half-life in rows; 0 passes values through. */
export class Ewma {
  private readonly alpha: number;
  private value: number | undefined;

  constructor(halflife: number, initial?: number) {
    this.alpha = halflife > 0 ? 1 - 2 ** (-1 / halflife) : 1;
    this.value = initial;
  }

  push(x: number): number {
    this.value = this.value === undefined ? x : this.alpha * x + (1 - this.alpha) * this.value;
    return this.value;
  }

  get current(): number | undefined {
    return this.value;
  }
}

/** Score in [0,1]: 0 for no error, 0.5 at the calibrated limit q, towards 1 beyond (README §5). */
export function scoreOf(smoothedError: number, q: number): number {
  return 1 - 2 ** (-Math.max(0, smoothedError) / q);
}

/** Population mean and standard deviation of column `f` of `rows`. */
export function columnStats(rows: readonly (readonly number[])[], f: number): { mean: number; std: number } {
  let mean = 0;
  for (const r of rows) mean += r[f]!;
  mean /= rows.length;
  let ss = 0;
  for (const r of rows) ss += (r[f]! - mean) ** 2;
  return { mean, std: Math.sqrt(ss / rows.length) };
}

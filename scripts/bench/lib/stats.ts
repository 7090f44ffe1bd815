/** Summaries the benchmarks print: min/median/max over repeated runs, percentiles of samples. */
export interface Spread {
  min: number;
  median: number;
  max: number;
}

export function spread(values: readonly number[], digits = 0): Spread {
  if (values.length === 0) throw new Error('spread of no values');
  const s = [...values].sort((a, b) => a - b);
  const round = (v: number) => +v.toFixed(digits);
  return { min: round(s[0]!), median: round(s[Math.floor((s.length - 1) / 2)]!), max: round(s[s.length - 1]!) };
}

/** Nearest-rank percentile (p in 0..100) of unsorted samples. */
export function percentile(samples: readonly number[], p: number): number {
  if (samples.length === 0) throw new Error('percentile of no samples');
  const s = [...samples].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function fmt(s: Spread, unit = ''): string {
  return `${s.min}/${s.median}/${s.max}${unit}`;
}

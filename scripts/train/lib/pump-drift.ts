/**
 * A synthetic normal pump for skab-pump's selection: the levels and noise of SKAB's anomaly-free
 * run's warm-up (its first 400 rows), then every channel drifting 4 of its noise standard
 * deviations per 1,000 rows (24 over 6,000 rows) with Gaussian noise. A baseline that follows
 * normal drift must stay quiet on it; SKAB has one normal run only, and its drift is slower.
 */
import type { SkabFile } from './datasets.js';
import { Prng } from './prng.js';
import { SKAB_TRAIN_ROWS } from './skab-eval.js';

export const DRIFT_SD_PER_1000 = 4;

// Seed 97, not the pump test's 21: that test (test/unit/pump-rul-models.test.ts) stays an outside check on other noise.
export function driftingPump(free: SkabFile, rows = 6400, seed = 97): SkabFile {
  const warm = free.rows.slice(0, SKAB_TRAIN_ROWS);
  const f = warm[0]!.length;
  const mean = Array.from({ length: f }, (_, c) => warm.reduce((s, r) => s + r[c]!, 0) / warm.length);
  const sd = mean.map((m, c) => Math.sqrt(warm.reduce((s, r) => s + (r[c]! - m) ** 2, 0) / warm.length));
  const rng = new Prng(seed);
  const out: Float64Array[] = [];
  for (let t = 0; t < rows; t++) {
    const drift = (DRIFT_SD_PER_1000 * Math.max(0, t - SKAB_TRAIN_ROWS)) / 1000;
    out.push(Float64Array.from(mean, (m, c) => m + (drift + rng.gauss()) * sd[c]!));
  }
  return { name: 'synthetic/drifting-pump', group: 'synthetic', rows: out, anomaly: new Uint8Array(rows) };
}

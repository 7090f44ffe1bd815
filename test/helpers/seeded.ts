// mulberry32, the one the fleet tooling uses: uniform in [0, 1), the same sequence for a seed on every run.
import { seededRandom as mulberry32 } from '../../scripts/fleet/lib/random.js';

/**
 * Random timings a failure can replay: a seeded generator (mulberry32) whose seed is printed at
 * creation and named in `describe()`. Set TEST_SEED=<n> to replay a run.
 */
export interface Seeded {
  readonly seed: number;
  /** Uniform in [0, 1). */
  next(): number;
  /** Uniform integer in [min, max]. */
  int(min: number, max: number): number;
  /** For assertion messages: "seed 12345 (replay with TEST_SEED=12345)". */
  describe(): string;
}

/** Deterministic standard-normal noise (mulberry32 + Box-Muller), so a test's stream is the same every run. */
export function seededNoise(seed: number): () => number {
  const uniform = mulberry32(seed);
  return () => Math.sqrt(-2 * Math.log(uniform() + 1e-12)) * Math.cos(2 * Math.PI * uniform());
}

export function seededRandom(label: string, seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : Math.floor(Math.random() * 2 ** 31)): Seeded {
  const next = mulberry32(seed);
  process.stderr.write(`${label}: random timings from seed ${seed} (replay with TEST_SEED=${seed})\n`);
  return { seed, next, int: (min, max) => min + Math.floor(next() * (max - min + 1)), describe: () => `seed ${seed} (replay with TEST_SEED=${seed})` };
}

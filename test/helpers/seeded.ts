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

export function seededRandom(label: string, seed = process.env.TEST_SEED ? Number(process.env.TEST_SEED) : Math.floor(Math.random() * 2 ** 31)): Seeded {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  process.stderr.write(`${label}: random timings from seed ${seed} (replay with TEST_SEED=${seed})\n`);
  return { seed, next, int: (min, max) => min + Math.floor(next() * (max - min + 1)), describe: () => `seed ${seed} (replay with TEST_SEED=${seed})` };
}

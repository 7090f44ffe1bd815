/**
 * Out-of-fold predictions of cmapss-rul's k-fold on disk (`cmapss-cv.js --oof FILE`): one JSON array
 * of { seed, config, mean[engine][cycle], sd[engine][cycle] }, Float32 values printed exactly, with
 * the training config they were made with. `npm run train -- --kfold-from FILE,...` reuses them
 * instead of running the k-fold again (a 3-seed k-fold is ~40 CPU minutes), but only when the
 * config is the one being shipped and every engine and cycle of the training file is covered.
 */
import { readFileSync, statSync, writeFileSync } from 'node:fs';
import type { Engine } from './datasets.js';
import type { Oof } from './rul-kfold.js';

/** 3 seeds x 20,631 cycles x 2 values print to ~1.5 MB; anything far larger is not such a file. */
const MAX_OOF_FILE_BYTES = 64 * 1024 * 1024;

export class OofFileError extends Error {
  constructor(file: string, detail: string) {
    super(`${file}: ${detail}`);
    this.name = 'OofFileError';
  }
}

export function writeOofFile(file: string, oofs: Oof[], config: object): void {
  writeFileSync(file, JSON.stringify(oofs.map((o) => ({ seed: o.seed, config, mean: o.mean.map((a) => Array.from(a)), sd: o.sd.map((a) => Array.from(a)) }))));
}

/** Keys whose values differ between two flat configs (nested values compared as JSON). */
function differingKeys(a: Record<string, unknown>, b: Record<string, unknown>): string[] {
  const keys = [...new Set([...Object.keys(a), ...Object.keys(b)])];
  return keys.filter((k) => JSON.stringify(a[k]) !== JSON.stringify(b[k]));
}

function perEngine(file: string, what: string, value: unknown, engines: Engine[]): Float32Array[] {
  if (!Array.isArray(value) || value.length !== engines.length) throw new OofFileError(file, `${what}: expected one array per engine (${engines.length}), found ${Array.isArray(value) ? value.length : typeof value}`);
  return value.map((row: unknown, i) => {
    const cycles = engines[i]!.rows.length;
    if (!Array.isArray(row) || row.length !== cycles) throw new OofFileError(file, `${what} of engine ${engines[i]!.unit}: expected ${cycles} cycles, found ${Array.isArray(row) ? row.length : typeof row}`);
    const out = new Float32Array(cycles);
    row.forEach((v: unknown, t) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new OofFileError(file, `${what} of engine ${engines[i]!.unit}, cycle ${t + 1}: not a finite number`);
      out[t] = v;
    });
    return out;
  });
}

/**
 * Reads out-of-fold predictions written by writeOofFile. With `expected`, refuses a file made with
 * another config (naming the keys that differ): reused predictions must come from the procedure
 * whose figures they will stand for.
 */
export function readOofFile(file: string, engines: Engine[], expected?: Record<string, unknown>): Oof[] {
  const size = statSync(file).size;
  if (size > MAX_OOF_FILE_BYTES) throw new OofFileError(file, `${size} bytes, more than the ${MAX_OOF_FILE_BYTES} an out-of-fold file can take; is it one written by cmapss-cv.js --oof?`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new OofFileError(file, `not JSON (${err instanceof Error ? err.message : String(err)}); write it with cmapss-cv.js --oof`);
  }
  if (!Array.isArray(parsed) || parsed.length === 0) throw new OofFileError(file, 'expected a non-empty array of per-seed predictions');
  return parsed.map((o: unknown, j) => {
    if (typeof o !== 'object' || o === null) throw new OofFileError(file, `entry ${j}: not an object`);
    const { seed, config, mean, sd } = o as Record<string, unknown>;
    if (!Number.isInteger(seed)) throw new OofFileError(file, `entry ${j}: seed is not an integer`);
    if (expected) {
      if (typeof config !== 'object' || config === null) throw new OofFileError(file, `seed ${String(seed)}: no config recorded, so it cannot be checked against the one being trained; run cmapss-cv.js --oof again`);
      const diff = differingKeys(config as Record<string, unknown>, expected);
      if (diff.length > 0) throw new OofFileError(file, `seed ${String(seed)} was made with another config (${diff.map((k) => `${k}: ${JSON.stringify((config as Record<string, unknown>)[k])} vs ${JSON.stringify(expected[k])}`).join('; ')}); run the k-fold of this config`);
    }
    return { seed: seed as number, mean: perEngine(file, `seed ${String(seed)} mean`, mean, engines), sd: perEngine(file, `seed ${String(seed)} sd`, sd, engines) };
  });
}

/** Per-seed predictions from several files, exactly the seeds wanted, in their order. */
export function readOofFiles(files: string[], engines: Engine[], seeds: number[], expected: Record<string, unknown>): Oof[] {
  const bySeed = new Map<number, Oof>();
  for (const f of files)
    for (const o of readOofFile(f, engines, expected)) {
      if (bySeed.has(o.seed)) throw new Error(`seed ${o.seed} appears twice among ${files.join(', ')}`);
      bySeed.set(o.seed, o);
    }
  const missing = seeds.filter((s) => !bySeed.has(s));
  const extra = [...bySeed.keys()].filter((s) => !seeds.includes(s));
  if (missing.length > 0 || extra.length > 0) throw new Error(`${files.join(', ')}: the config validates seeds ${seeds.join(',')}; missing ${missing.join(',') || 'none'}, not asked for ${extra.join(',') || 'none'}`);
  return seeds.map((s) => bySeed.get(s)!);
}

/**
 * The k-fold validation of cmapss-rul, one child process per training seed (each runs
 * scripts/train/cmapss-cv.js for its seed and writes its out-of-fold predictions): single-threaded
 * JS training is the cost, and seeds are independent. The result is the same as running them in
 * one process, seed after seed (same code, same seeds).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Engine } from './datasets.js';
import type { Oof } from './rul-kfold.js';
import { readOofFiles } from './rul-oof-store.js';

const CV_SCRIPT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../cmapss-cv.js');

function runSeed(seed: number, dataDir: string, out: string, log: (s: string) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CV_SCRIPT, '--seeds', String(seed), '--oof', out, '--data', dataDir], { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      err += d;
      for (const line of d.split('\n')) if (line.trim()) log(line);
    });
    child.on('error', reject);
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`k-fold for seed ${seed} failed (exit ${code}): ${err.slice(-500)}`))));
  });
}

/** The children run CMAPSS_CONFIG; `config` (the same) is checked against what each child recorded. */
export async function outOfFoldParallel(seeds: number[], dataDir: string, engines: Engine[], config: object, log: (s: string) => void): Promise<Oof[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'cmapss-cv-'));
  try {
    const files = seeds.map((s) => path.join(dir, `seed${s}.json`));
    await Promise.all(seeds.map((s, i) => runSeed(s, dataDir, files[i]!, log)));
    return readOofFiles(files, engines, seeds, config as Record<string, unknown>);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

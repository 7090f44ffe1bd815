/**
 * stream-ad on the NAB development split (../shared/datasets/nab-dev), run through the real
 * `edge-agent replay` CLI exactly as a user would (one process per file, the detector knows
 * nothing about the file), scored by NAB's own recipe (../shared/tools/nab-score.py) with
 * `anomaly_score` and with the rows where the alert turns on (--onsets=alert).
 *
 * The split into a tuning half and a check half was fixed before any result was looked at: a file
 * is in the tuning half when the first byte of sha256("<category>/<file>.csv") is below 0x80.
 * Parameters were chosen on the tuning half only; both halves and the whole split are reported.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { fileURLToPath } from 'node:url';

const run = promisify(execFile);
const HERE = path.dirname(fileURLToPath(import.meta.url));
const CLI = path.resolve(HERE, '../../agent/cli/main.js');

/** NAB's scoring recipe next to the datasets folder (../shared/tools/nab-score.py). */
export function nabScorer(dataDir: string): string {
  return path.join(dataDir, '..', 'tools', 'nab-score.py');
}

export type NabPart = 'tune' | 'check' | 'all';

export function nabPart(rel: string): 'tune' | 'check' {
  return createHash('sha256').update(rel).digest()[0]! < 0x80 ? 'tune' : 'check';
}

export interface NabScores {
  files: number;
  standard: number;
  reward_low_FP_rate: number;
  reward_low_FN_rate: number;
  threshold: number;
}

export interface NabFigures {
  score: Record<NabPart, NabScores>;
  onsets: Record<NabPart, NabScores>;
  rows: number;
  seconds: number;
}

/** Replays every file of the split with the CLI (two at a time), then scores each part both ways. */
export async function evalNab(nabRoot: string, modelsDir: string, opts: { parts?: NabPart[]; scorer: string }): Promise<NabFigures> {
  const started = performance.now();
  const windows = JSON.parse(readFileSync(path.join(nabRoot, 'labels', 'combined_windows.json'), 'utf8')) as Record<string, unknown>;
  const files = Object.keys(windows);
  const work = mkdtempSync(path.join(tmpdir(), 'edge-agent-nab-'));
  try {
    const results = path.join(work, 'results');
    let rows = 0;
    let next = 0;
    const worker = async () => {
      while (next < files.length) {
        const rel = files[next++]!;
        const out = path.join(results, rel);
        mkdirSync(path.dirname(out), { recursive: true });
        const { stdout } = await run(process.execPath, [CLI, 'replay', '--input', path.join(nabRoot, 'data', rel), '--output', out, '--models-dir', modelsDir, '--no-progress', '--json']);
        rows += (JSON.parse(stdout) as { rows: number }).rows;
      }
    };
    await Promise.all([worker(), worker()]);
    const parts = opts.parts ?? ['tune', 'check', 'all'];
    const score = {} as Record<NabPart, NabScores>;
    const onsets = {} as Record<NabPart, NabScores>;
    for (const part of parts) {
      // A root holding only this part's labels (the scorer reads labels and profiles, never data).
      const root = path.join(work, `root-${part}`);
      mkdirSync(path.join(root, 'labels'), { recursive: true });
      mkdirSync(path.join(root, 'config'), { recursive: true });
      const chosen = Object.fromEntries(Object.entries(windows).filter(([rel]) => part === 'all' || nabPart(rel) === part));
      writeFileSync(path.join(root, 'labels', 'combined_windows.json'), JSON.stringify(chosen));
      copyFileSync(path.join(nabRoot, 'config', 'profiles.json'), path.join(root, 'config', 'profiles.json'));
      const n = Object.keys(chosen).length;
      score[part] = await nabScore(opts.scorer, root, results, n);
      onsets[part] = await nabScore(opts.scorer, root, results, n, 'alert');
    }
    return { score, onsets, rows, seconds: (performance.now() - started) / 1000 };
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

async function nabScore(scorer: string, root: string, results: string, files: number, onsetColumn?: string): Promise<NabScores> {
  const { stdout } = await run('python3', [scorer, root, results, ...(onsetColumn ? [`--onsets=${onsetColumn}`] : [])]);
  const out = (JSON.parse(stdout) as { detector: Record<string, { normalized: number; threshold: number }> }).detector;
  const r1 = (v: number) => Math.round(v * 10) / 10;
  return {
    files,
    standard: r1(out['standard']!.normalized),
    reward_low_FP_rate: r1(out['reward_low_FP_rate']!.normalized),
    reward_low_FN_rate: r1(out['reward_low_FN_rate']!.normalized),
    threshold: Math.round(out['standard']!.threshold * 1000) / 1000,
  };
}

export function printNab(f: NabFigures): void {
  const line = (label: string, s: Record<NabPart, NabScores>) => {
    for (const [part, v] of Object.entries(s)) {
      console.log(`  ${label.padEnd(14)} ${part.padEnd(6)} (${String(v.files).padStart(2)} files): standard ${v.standard.toFixed(1)}  low FP ${v.reward_low_FP_rate.toFixed(1)}  low FN ${v.reward_low_FN_rate.toFixed(1)}  (best threshold ${v.threshold})`);
    }
  };
  console.log(`stream-ad  NAB dev split through edge-agent replay (${f.rows} rows, ${f.seconds.toFixed(1)} s), normalised NAB scores:`);
  line('anomaly_score', f.score);
  line('alert onsets', f.onsets);
  console.log('  published on this split (standard): CAD-OSE 75.9, HTM 75.5, ARTime 74.6, Skyline 60.2, RCF 59.4, windowed Gaussian 41.4');
}

/**
 * Tuning skab-pump through the agent's own runtime. With `follow_in_alert` the baseline depends on
 * the alert state, so every candidate changes the model's inputs and has to be replayed row by row;
 * instead of a second implementation of that loop, each candidate is written as a manifest next to
 * the exported ONNX file and replayed with `openModel` / `runner.push`, exactly as `npm run eval`
 * and a live agent run it. Selection: tunePump's rules (pump-tuning.ts).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { openModel, type Row } from '../../../agent/inference/index.js';
import type { AlertSpec, ScoreSpec } from './contract.js';
import type { SkabFile } from './datasets.js';
import { sha256 } from './manifest.js';
import { addConfusion, emptyConfusion, type Confusion } from './metrics.js';
import { SKAB_TRAIN_ROWS } from './skab-eval.js';
import type { FreeRun } from './pump-tuning.js';

export interface Baseline {
  follow: number[];
  follow_clip: number;
  follow_in_alert: number;
  relearn_after?: number;
  /** Half-life (rows) of the noise-following standard deviation (README §1), frozen in alert. */
  follow_std?: number;
}

export interface RuntimeCandidate {
  /** Index of the ONNX variant (level weights are inside the graph). */
  graph: number;
  baseline: Baseline | null;
  score: ScoreSpec;
  alert: AlertSpec;
}

export interface CandidateResult {
  byGroup: Record<string, Confusion>;
  free: FreeRun;
  /** A synthetic normal pump drifting slowly (pump-drift.ts), when given. */
  drift?: FreeRun;
}

const T0 = Date.UTC(2020, 0, 1);

/** Each file's rows interleaved as live data would arrive, one key per file; alerts per file. */
export async function replayAlerts(modelsDir: string, id: string, files: SkabFile[]): Promise<Map<string, Uint8Array>> {
  const runner = await openModel(modelsDir, id);
  try {
    const rows: Row[] = [];
    const longest = Math.max(...files.map((f) => f.rows.length));
    for (let t = 0; t < longest; t++) for (const f of files) if (t < f.rows.length) rows.push({ key: f.name, ts: T0 + t * 1000, values: Array.from(f.rows[t]!) });
    const verdicts = await runner.push(rows);
    const out = new Map(files.map((f) => [f.name, new Uint8Array(f.rows.length)]));
    const seen = new Map<string, number>();
    rows.forEach((r, i) => {
      const t = seen.get(r.key) ?? 0;
      seen.set(r.key, t + 1);
      if (verdicts[i]?.alert) out.get(r.key)![t] = 1;
    });
    return out;
  } finally {
    await runner.close();
  }
}

/** Raises and time in alert of one alert track after the warm-up. */
export function freeRunOf(alerts: Uint8Array, from: number): FreeRun {
  let raises = 0;
  let on = 0;
  for (let t = from; t < alerts.length; t++) {
    if (alerts[t] === 1 && (t === from || alerts[t - 1] === 0)) raises++;
    on += alerts[t]!;
  }
  const rows = alerts.length - from;
  return { rows, raises, raises_per_1000: (1000 * raises) / rows, rows_in_alert_pct: (100 * on) / rows };
}

/**
 * Replays every candidate over the fault files and the anomaly-free run. `entryOf` builds the
 * manifest entry of a candidate (without sha256); `graphs` are the ONNX variants' bytes.
 */
export async function replayCandidates(
  graphs: Uint8Array[],
  entryOf: (c: RuntimeCandidate) => Record<string, unknown> & { id: string; file: string },
  candidates: RuntimeCandidate[],
  faults: SkabFile[],
  free: SkabFile,
  log: (s: string) => void,
  drift?: SkabFile,
): Promise<CandidateResult[]> {
  const dir = mkdtempSync(path.join(tmpdir(), 'pump-tuning-'));
  try {
    graphs.forEach((g, i) => writeFileSync(path.join(dir, `graph${i}.onnx`), g));
    const results: CandidateResult[] = [];
    for (const [k, c] of candidates.entries()) {
      const entry = { ...entryOf(c), file: `graph${c.graph}.onnx`, sha256: sha256(graphs[c.graph]!) };
      writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ format: 'edge-agent/models/1', models: [entry] }));
      const alerts = await replayAlerts(dir, entry.id, [...faults, free, ...(drift ? [drift] : [])]);
      const byGroup: Record<string, Confusion> = {};
      for (const f of faults) addConfusion((byGroup[f.group] ??= emptyConfusion()), f.anomaly, alerts.get(f.name)!, SKAB_TRAIN_ROWS, f.anomaly.length);
      results.push({ byGroup, free: freeRunOf(alerts.get(free.name)!, SKAB_TRAIN_ROWS), ...(drift ? { drift: freeRunOf(alerts.get(drift.name)!, SKAB_TRAIN_ROWS) } : {}) });
      if ((k + 1) % 24 === 0) log(`  replayed ${k + 1}/${candidates.length} candidates`);
    }
    return results;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

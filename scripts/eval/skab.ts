/** SKAB evaluation through the shipped runtime (openModel / runner.push), SKAB's own protocol. */
import { openModel, type ModelRunner, type Row } from '../../agent/inference/index.js';
import { SKAB_CHANNELS, type SkabFile } from '../train/lib/datasets.js';
import { addConfusion, emptyConfusion, skabScores, type Confusion } from '../train/lib/metrics.js';
import { mcc } from '../train/lib/tune.js';
import { SKAB_TRAIN_ROWS } from '../train/lib/skab-eval.js';
import { freeRunOf } from '../train/lib/pump-runtime-tuning.js';
import type { FreeRun } from '../train/lib/pump-tuning.js';

export interface SkabFigures {
  f1: number;
  far: number;
  mar: number;
  mcc: number;
  rows: number;
}

const T0 = Date.UTC(2020, 0, 1);

function figures(c: Confusion): SkabFigures {
  return { ...skabScores(c), mcc: mcc(c), rows: c.tp + c.fp + c.tn + c.fn };
}

/** Pushes each series through the runner (all keys in one push) and returns alerts per series. */
async function alerts(runner: ModelRunner, series: { key: string; rows: number[][] }[]): Promise<Map<string, Uint8Array>> {
  const rows: Row[] = [];
  const longest = Math.max(...series.map((s) => s.rows.length));
  // Interleaved as live data would arrive: row t of every key, then row t+1.
  for (let t = 0; t < longest; t++) for (const s of series) if (t < s.rows.length) rows.push({ key: s.key, ts: T0 + t * 1000, values: s.rows[t]! });
  const verdicts = await runner.push(rows);
  const out = new Map(series.map((s) => [s.key, new Uint8Array(s.rows.length)]));
  const seen = new Map<string, number>();
  rows.forEach((r, i) => {
    const t = seen.get(r.key) ?? 0;
    seen.set(r.key, t + 1);
    if (verdicts[i]?.alert) out.get(r.key)![t] = 1;
  });
  return out;
}

/**
 * skab-pump: one key per file, all 8 channels. `all` scores rows 401..end (the test parts);
 * `everyRow` is the SKAB repository's own protocol (core/metrics.py chp_score "binary", as its
 * notebooks call it): every row of every file, the warm-up rows included, where the agent gives no
 * verdict and so predicts normal (296 of them are labelled anomalous: missed alarms).
 */
export async function evalSkabPump(modelsDir: string, faults: SkabFile[], free: SkabFile): Promise<{ all: SkabFigures; everyRow: SkabFigures; byGroup: Record<string, SkabFigures>; freeAlertRate: number; free: FreeRun }> {
  const runner = await openModel(modelsDir, 'skab-pump');
  const a = await alerts(runner, [...faults, free].map((f) => ({ key: f.name, rows: f.rows.map((r) => Array.from(r)) })));
  const all = emptyConfusion();
  const everyRow = emptyConfusion();
  const byGroup: Record<string, Confusion> = {};
  for (const f of faults) {
    const c = (byGroup[f.group] ??= emptyConfusion());
    addConfusion(everyRow, f.anomaly, a.get(f.name)!, 0, f.anomaly.length);
    addConfusion(all, f.anomaly, a.get(f.name)!, SKAB_TRAIN_ROWS, f.anomaly.length);
    addConfusion(c, f.anomaly, a.get(f.name)!, SKAB_TRAIN_ROWS, f.anomaly.length);
  }
  const fa = a.get(free.name)!;
  const freeAlertRate = fa.subarray(SKAB_TRAIN_ROWS).reduce((s, v) => s + v, 0) / (fa.length - SKAB_TRAIN_ROWS);
  return { all: figures(all), everyRow: figures(everyRow), byGroup: Object.fromEntries(Object.entries(byGroup).map(([g, c]) => [g, figures(c)])), freeAlertRate, free: freeRunOf(fa, SKAB_TRAIN_ROWS) };
}

/** stream-ad: every channel of every file a separate key; figures per channel and pooled. */
export async function evalStreamAd(
  modelsDir: string,
  faults: SkabFile[],
  free: SkabFile,
): Promise<{ pooled: SkabFigures; perChannel: Record<string, SkabFigures>; anyChannel: SkabFigures; freeAlerts: number; freeRows: number; freeAlertsPer1000Rows: number }> {
  const runner = await openModel(modelsDir, 'stream-ad');
  const series = [...faults, free].flatMap((f) => SKAB_CHANNELS.map((ch, c) => ({ key: `${f.name}/${ch}`, rows: f.rows.map((r) => [r[c]!]) })));
  const a = await alerts(runner, series);
  const pooled = emptyConfusion();
  const any = emptyConfusion();
  const perChannel: Record<string, Confusion> = {};
  for (const f of faults) {
    const anyAlert = new Uint8Array(f.anomaly.length);
    SKAB_CHANNELS.forEach((ch) => {
      const al = a.get(`${f.name}/${ch}`)!;
      addConfusion((perChannel[ch] ??= emptyConfusion()), f.anomaly, al, SKAB_TRAIN_ROWS, f.anomaly.length);
      addConfusion(pooled, f.anomaly, al, SKAB_TRAIN_ROWS, f.anomaly.length);
      al.forEach((v, t) => (anyAlert[t]! |= v));
    });
    addConfusion(any, f.anomaly, anyAlert, SKAB_TRAIN_ROWS, f.anomaly.length);
  }
  // The anomaly-free run: alerts raised (rising edges) per channel after the warm-up.
  let freeAlerts = 0;
  let freeRows = 0;
  for (const ch of SKAB_CHANNELS) {
    const al = a.get(`${free.name}/${ch}`)!;
    for (let t = runner.warmupRows; t < al.length; t++) if (al[t] && !al[t - 1]) freeAlerts++;
    freeRows += al.length - runner.warmupRows;
  }
  return {
    freeAlerts,
    freeRows,
    freeAlertsPer1000Rows: (1000 * freeAlerts) / freeRows,
    pooled: figures(pooled),
    perChannel: Object.fromEntries(Object.entries(perChannel).map(([ch, c]) => [ch, figures(c)])),
    anyChannel: figures(any),
  };
}

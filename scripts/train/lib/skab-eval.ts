/**
 * SKAB protocol helpers shared by training (tuning on normal data) and exploration: per file,
 * the first 400 rows are the warm-up (training part), the rest the test part.
 */
import { rawOutputs, verdicts, type AlertSpec, type Forward, type RawSeries, type ScoreSpec, type SeriesSpec } from './contract.js';
import { addConfusion, emptyConfusion, skabScores, type Confusion } from './metrics.js';
import type { SkabFile } from './datasets.js';

export const SKAB_TRAIN_ROWS = 400;

export interface CachedSeries {
  file: SkabFile;
  raw: RawSeries;
}

/** Raw model outputs for every fault file, for one channel (index) or all channels (null). */
export function skabRaw(files: SkabFile[], channel: number | null, spec: SeriesSpec, forward: Forward): CachedSeries[] {
  return files.map((file) => {
    const rows = channel === null ? file.rows : file.rows.map((r) => [r[channel]!]);
    const features = channel === null ? file.rows[0]!.length : 1;
    return { file, raw: rawOutputs(spec, rows, features, forward) };
  });
}

/** Confusion counts of the alerts over the test parts (rows 400..end) of the cached series. */
export function skabConfusion(series: CachedSeries[], score: ScoreSpec, alert: AlertSpec): Confusion {
  const c = emptyConfusion();
  for (const s of series) {
    const v = verdicts(s.raw, score, alert);
    addConfusion(c, s.file.anomaly, v.alert, SKAB_TRAIN_ROWS, s.file.anomaly.length);
  }
  return c;
}

export function skabFigures(series: CachedSeries[], score: ScoreSpec, alert: AlertSpec): { f1: number; far: number; mar: number } {
  return skabScores(skabConfusion(series, score, alert));
}

/** Share of verdict rows alerting on a normal series (false alarms per verdict). */
export function alertRate(series: CachedSeries[], score: ScoreSpec, alert: AlertSpec): number {
  let on = 0;
  let n = 0;
  for (const s of series) {
    const v = verdicts(s.raw, score, alert);
    for (let t = v.firstVerdict; t < v.alert.length; t++) {
      on += v.alert[t]!;
      n++;
    }
  }
  return n === 0 ? 0 : on / n;
}

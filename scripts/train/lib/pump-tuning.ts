/**
 * Choosing skab-pump's baseline, level weights, score and alert parameters. Like tune.ts
 * (leave-one-group-out over SKAB's fault groups), on F1 (the figure SKAB and issue 11 judge) or
 * the Matthews correlation of the alerts, with one more rule: a candidate is admissible only if, on SKAB's anomaly-free run, it raises at most
 * `maxRaisesPer1000` alerts per 1,000 scored rows, and is in alert on at most `maxAlertPct` % of
 * them (an alert that never clears raises only once). A pump that runs normally for hours must not
 * page its operator every few minutes, nor stay red, however well it catches valve faults.
 */
import { emptyConfusion, skabScores, type Confusion } from './metrics.js';
import { mcc } from './tune.js';

export interface FreeRun {
  rows: number;
  raises: number;
  raises_per_1000: number;
  rows_in_alert_pct: number;
}

export interface PumpFigures {
  f1: number;
  far: number;
  mar: number;
  mcc: number;
}

export interface Selection {
  chosen: number;
  inSample: PumpFigures;
  crossValidated: PumpFigures & { perGroup: Record<string, number> };
  free: FreeRun;
  admissible: number;
}

export const figures = (c: Confusion): PumpFigures => ({ ...skabScores(c), mcc: mcc(c) });
const sum = (cs: Confusion[]): Confusion => cs.reduce((a, c) => ({ tp: a.tp + c.tp, fp: a.fp + c.fp, tn: a.tn + c.tn, fn: a.fn + c.fn }), emptyConfusion());

export type Criterion = 'f1' | 'mcc';

/**
 * results[i]: candidate i's confusion per fault group and its anomaly-free run. F1 alone would
 * favour an alert that never clears (alarming on every row scores 0.698 on SKAB); the
 * anomaly-free run's limits are what rule that out, so F1 is safe to select on among admissible candidates.
 */
export function selectPump(results: { byGroup: Record<string, Confusion>; free: FreeRun; drift?: FreeRun }[], maxRaisesPer1000: number, maxAlertPct: number, criterion: Criterion = 'mcc'): Selection {
  const judge = (c: Confusion): number => (criterion === 'f1' ? skabScores(c).f1 : mcc(c));
  const groups = Object.keys(results[0]!.byGroup);
  // A slowly drifting normal pump, when given, must raise nothing.
  const admissible = results.map((_, i) => i).filter((i) => results[i]!.free.raises_per_1000 <= maxRaisesPer1000 && results[i]!.free.rows_in_alert_pct <= maxAlertPct && (results[i]!.drift?.raises ?? 0) === 0);
  if (admissible.length === 0) {
    throw new Error(
      `no candidate raises at most ${maxRaisesPer1000} alerts per 1,000 rows and stays in alert at most ${maxAlertPct} % of the anomaly-free run (and none on the drifting pump) ` +
        `(fewest raises: ${Math.min(...results.map((r) => r.free.raises_per_1000)).toFixed(2)} per 1,000; least time in alert ${Math.min(...results.map((r) => r.free.rows_in_alert_pct)).toFixed(1)} %)`,
    );
  }
  const best = (use: string[]): number => {
    let bi = admissible[0]!;
    let bv = -Infinity;
    for (const i of admissible) {
      const v = judge(sum(use.map((g) => results[i]!.byGroup[g]!)));
      if (v > bv + 1e-12) {
        bv = v;
        bi = i;
      }
    }
    return bi;
  };
  const chosen = best(groups);
  const cvParts: Confusion[] = [];
  const perGroup: Record<string, number> = {};
  for (const g of groups) {
    const i = best(groups.filter((x) => x !== g));
    perGroup[g] = i;
    cvParts.push(results[i]!.byGroup[g]!);
  }
  return {
    chosen,
    inSample: figures(sum(groups.map((g) => results[chosen]!.byGroup[g]!))),
    crossValidated: { ...figures(sum(cvParts)), perGroup },
    free: results[chosen]!.free,
    admissible: admissible.length,
  };
}

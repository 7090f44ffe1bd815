/**
 * Choosing skab-pump's baseline, level weights, score and alert parameters. Like tune.ts
 * (leave-one-group-out over SKAB's fault groups, Matthews correlation of the alerts), with one more
 * rule: a candidate is admissible only if, on SKAB's anomaly-free run, it raises at most
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

/** results[i]: candidate i's confusion per fault group and its anomaly-free run. */
export function selectPump(results: { byGroup: Record<string, Confusion>; free: FreeRun }[], maxRaisesPer1000: number, maxAlertPct: number): Selection {
  const groups = Object.keys(results[0]!.byGroup);
  const admissible = results.map((_, i) => i).filter((i) => results[i]!.free.raises_per_1000 <= maxRaisesPer1000 && results[i]!.free.rows_in_alert_pct <= maxAlertPct);
  if (admissible.length === 0) {
    throw new Error(
      `no candidate raises at most ${maxRaisesPer1000} alerts per 1,000 rows and stays in alert at most ${maxAlertPct} % of the anomaly-free run ` +
        `(fewest raises: ${Math.min(...results.map((r) => r.free.raises_per_1000)).toFixed(2)} per 1,000; least time in alert ${Math.min(...results.map((r) => r.free.rows_in_alert_pct)).toFixed(1)} %)`,
    );
  }
  const best = (use: string[]): number => {
    let bi = admissible[0]!;
    let bv = -Infinity;
    for (const i of admissible) {
      const v = mcc(sum(use.map((g) => results[i]!.byGroup[g]!)));
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

/**
 * Choosing the level weights, score and alert parameters (ewma half-life, calibration factor,
 * hysteresis counts) of an anomaly model by leave-one-group-out cross-validation over SKAB's fault groups (valve1,
 * valve2, other): each group is scored with the parameters that did best on the other two, which
 * gives an honest estimate; the shipped parameters are the ones that do best on all groups.
 * The objective is the Matthews correlation of the alerts on the test parts: unlike F1 it gives
 * nothing to a detector that alerts all the time.
 */
import type { AlertSpec, ScoreSpec } from './contract.js';
import { addConfusion, emptyConfusion, skabScores, type Confusion } from './metrics.js';
import { verdicts } from './contract.js';
import { SKAB_TRAIN_ROWS, type CachedSeries } from './skab-eval.js';

export interface Candidate {
  /** Index into the level-weight variants given to `tune`. */
  level: number;
  score: ScoreSpec;
  alert: AlertSpec;
}

/** The model's raw outputs on SKAB for one choice of level weights (per channel, or one list). */
export interface LevelVariant {
  levelWeight: number[];
  series: CachedSeries[][];
}

export function mcc(c: Confusion): number {
  const d = Math.sqrt((c.tp + c.fp) * (c.tp + c.fn) * (c.tn + c.fp) * (c.tn + c.fn));
  return d === 0 ? 0 : (c.tp * c.tn - c.fp * c.fn) / d;
}

export function candidates(levels: number): Candidate[] {
  const out: Candidate[] = [];
  for (let level = 0; level < levels; level++)
  for (const h of [0, 4, 16])
    for (const factor of [0.75, 1, 1.5, 2, 3, 5])
      // No 1/1: an alert that may clear on the next row flaps, and every raise is an uplinked event.
      for (const [onCount, offCount] of [[2, 5], [3, 10], [5, 20]] as const)
        out.push({
          level,
          score: { ewma_halflife: h, quantile: 0.99, factor },
          alert: { direction: 'above', on: 0.5, off: 0.4, on_count: onCount, off_count: offCount },
        });
  return out;
}

/** Confusion of each candidate on each group: conf[candidate][group]. */
function confusions(variants: LevelVariant[], groups: string[], cands: Candidate[]): Confusion[][] {
  return cands.map((cand) => {
    const byGroup = groups.map(() => emptyConfusion());
    for (const channelSeries of variants[cand.level]!.series)
      for (const s of channelSeries) {
        const v = verdicts(s.raw, cand.score, cand.alert);
        addConfusion(byGroup[groups.indexOf(s.file.group)]!, s.file.anomaly, v.alert, SKAB_TRAIN_ROWS, s.file.anomaly.length);
      }
    return byGroup;
  });
}

const sum = (cs: Confusion[]): Confusion => cs.reduce((a, c) => ({ tp: a.tp + c.tp, fp: a.fp + c.fp, tn: a.tn + c.tn, fn: a.fn + c.fn }), emptyConfusion());

export interface TuneResult {
  chosen: Candidate;
  levelWeight: number[];
  /** Figures of the chosen candidate on all groups (selected on them: optimistic). */
  inSample: { f1: number; far: number; mar: number; mcc: number };
  /** Leave-one-group-out estimate: each group judged with parameters chosen on the others. */
  crossValidated: { f1: number; far: number; mar: number; mcc: number; perGroup: Record<string, Candidate & { levelWeight: number[] }> };
  trials: number;
}

/**
 * Each variant holds, for one choice of level weights, one list of cached series per channel (or a
 * single list for a multivariate model); every series belongs to a SKAB fault group.
 */
export function tune(variants: LevelVariant[]): TuneResult {
  const groups = [...new Set(variants[0]!.series.flat().map((s) => s.file.group))];
  const cands = candidates(variants.length);
  const conf = confusions(variants, groups, cands);
  const best = (use: number[]): number => {
    let bi = 0;
    let bv = -Infinity;
    conf.forEach((byGroup, i) => {
      const v = mcc(sum(use.map((g) => byGroup[g]!)));
      if (v > bv + 1e-12) {
        bv = v;
        bi = i;
      }
    });
    return bi;
  };
  const all = groups.map((_, g) => g);
  const chosenIndex = best(all);
  const cvParts: Confusion[] = [];
  const perGroup: Record<string, Candidate & { levelWeight: number[] }> = {};
  groups.forEach((group, g) => {
    const i = best(all.filter((x) => x !== g));
    perGroup[group] = { ...cands[i]!, levelWeight: variants[cands[i]!.level]!.levelWeight };
    cvParts.push(conf[i]![g]!);
  });
  const inConf = sum(conf[chosenIndex]!);
  const cvConf = sum(cvParts);
  return {
    chosen: cands[chosenIndex]!,
    levelWeight: variants[cands[chosenIndex]!.level]!.levelWeight,
    inSample: { ...skabScores(inConf), mcc: mcc(inConf) },
    crossValidated: { ...skabScores(cvConf), mcc: mcc(cvConf), perGroup },
    trials: cands.length,
  };
}

/** Validation metrics: SKAB's binary outlier metrics and C-MAPSS's RMSE and NASA score. */

export interface Confusion {
  tp: number;
  fp: number;
  tn: number;
  fn: number;
}

export const emptyConfusion = (): Confusion => ({ tp: 0, fp: 0, tn: 0, fn: 0 });

export function addConfusion(c: Confusion, truth: ArrayLike<number>, predicted: ArrayLike<number>, from: number, to: number): void {
  for (let t = from; t < to; t++) {
    const y = truth[t] === 1;
    const p = predicted[t] === 1;
    if (y && p) c.tp++;
    else if (!y && p) c.fp++;
    else if (y) c.fn++;
    else c.tn++;
  }
}

/**
 * SKAB's outlier-detection figures, point-wise over the concatenated test parts: F1,
 * false alarm rate FAR = FP / (FP + TN) and missed alarm rate MAR = FN / (FN + TP), in %.
 */
export function skabScores(c: Confusion): { f1: number; far: number; mar: number } {
  const f1 = c.tp === 0 ? 0 : (2 * c.tp) / (2 * c.tp + c.fp + c.fn);
  const far = c.fp + c.tn === 0 ? 0 : (100 * c.fp) / (c.fp + c.tn);
  const mar = c.fn + c.tp === 0 ? 0 : (100 * c.fn) / (c.fn + c.tp);
  return { f1, far, mar };
}

export function rmse(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) s += (pred[i]! - truth[i]!) ** 2;
  return Math.sqrt(s / pred.length);
}

/** PHM08 scoring function: exp(-d/13) - 1 for early predictions, exp(d/10) - 1 for late (d = pred - true). */
export function nasaScore(pred: ArrayLike<number>, truth: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < pred.length; i++) {
    const d = pred[i]! - truth[i]!;
    s += d < 0 ? Math.exp(-d / 13) - 1 : Math.exp(d / 10) - 1;
  }
  return s;
}

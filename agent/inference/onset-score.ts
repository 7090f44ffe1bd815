/**
 * The score of calibration "onset-tail" (agent/inference/README.md §5b): how surprising the
 * present reading is against the series' own running distribution, as a Gaussian tail
 * probability on a log scale, spiking at an onset and falling back instead of staying high.
 *
 *   z     = max(sqrt(model error), hour-of-day deviation where the daily context applies)
 *   raw   = min(1, -log10(P(|Z| > z) / 2) / decades)        (z = 0: 0.015; P = 1e-20: 1)
 *   raw   = max(raw, range_score) for a reading beyond everything seen, max(raw, stuck_score)
 *           on the reading that makes a stuck run
 *   score = raw if raw exceeds every raw score of the previous `peak_window` rows, else 0
 *
 * The last rule is what makes one onset one detection: while a change is being absorbed by the
 * baseline its surprise decays, so it never again exceeds the peak it started with. `raw` (the
 * "surprise") stays high for as long as the present is away from the running normal: an alert
 * judged on it (alert.output "surprise") is raised at the onset and held while the change lasts,
 * until the baseline has taken the change in as the new normal.
 */
import type { Observation } from './online-baseline.js';

export interface OnsetParams {
  decades: number;
  peak_window: number;
  range_score: number;
  stuck_score: number;
}

export interface OnsetState {
  /** Raw scores of the last `peak_window` rows (a ring once full: `at` is the oldest). */
  recent: number[];
  at?: number;
}

/** The result of `onsetScore`, reused between calls (it runs once per reading and must not allocate). */
export interface OnsetResult {
  score: number;
  surprise: number;
}

/** Complementary error function (Numerical Recipes erfcc, fractional error below 1.2e-7). */
export function erfc(x: number): number {
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r =
    t *
    Math.exp(
      -z * z -
        1.26551223 +
        t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))),
    );
  return x >= 0 ? r : 2 - r;
}

/** One row's score and surprise from the model's squared surprise (in baseline variances) and the baseline's observation. */
export function onsetScore(p: OnsetParams, st: OnsetState, modelError: number, obs: Pick<Observation, 'seasonalZ' | 'outOfRange' | 'stuck'>, out: OnsetResult): OnsetResult {
  const z = Math.max(Math.sqrt(Math.max(0, modelError)), obs.seasonalZ);
  const tail = erfc(z / Math.SQRT2) / 2;
  let raw = Math.min(1, -Math.log10(Math.max(tail, 1e-300)) / p.decades);
  if (obs.outOfRange) raw = Math.max(raw, p.range_score);
  if (obs.stuck) raw = Math.max(raw, p.stuck_score);
  const recent = st.recent;
  let peak = 0;
  for (let i = 0; i < recent.length; i++) if (recent[i]! > peak) peak = recent[i]!;
  if (recent.length < p.peak_window) recent.push(raw);
  else {
    const at = st.at ?? 0;
    recent[at] = raw;
    st.at = (at + 1) % p.peak_window;
  }
  out.score = raw > peak ? raw : 0;
  out.surprise = raw;
  return out;
}

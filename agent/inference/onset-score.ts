/**
 * The score of calibration "onset-tail" (agent/inference/README.md §5b): how surprising the
 * present reading is against the series' own running distribution, as a Gaussian tail
 * probability on a log scale, spiking at an onset and falling back instead of staying high.
 *
 *   z     = max(sqrt(model error), hour-of-day deviation where the daily context applies)
 *   raw   = min(1, -log10(P(|Z| > z) / 2) / decades)        (z = 0: 0.015; P = 1e-20: 1)
 *   raw   = raw^(1-w) x lik^w with the likelihood stage (below), w = likelihood.weight
 *   raw   = max(raw, range_score) for a reading beyond everything seen, max(raw, stuck_score)
 *           on the reading that makes a stuck run
 *   score = raw if raw exceeds every raw score of the previous `peak_window` rows, else 0
 *
 * The last rule is what makes one onset one detection: while a change is being absorbed by the
 * baseline its surprise decays, so it never again exceeds the peak it started with. `raw` (the
 * "surprise") stays high for as long as the present is away from the running normal: an alert
 * judged on it (alert.output "surprise") is raised at the onset and held while the change lasts,
 * until the baseline has taken the change in as the new normal.
 *
 * The likelihood stage (Numenta's anomaly likelihood, NAB's best detectors) judges the tail score
 * against the stream's own history of tail scores: lik = -log10 Q((short - m) / sd) / 10, where
 * short is a short exponential average of the tail score and m, sd its long-run mean and
 * deviation. A stream that is often surprising (spiky load, noisy traffic) then needs a larger
 * surprise than a quiet one to score as high.
 */
import type { Observation } from './online-baseline.js';
import { contextNovelty, contextStateProblem, newContext, restoreContext, saveContext, type ContextParams, type ContextState, type SavedContext } from './context-novelty.js';

export interface OnsetParams {
  decades: number;
  peak_window: number;
  range_score: number;
  stuck_score: number;
  likelihood?: LikelihoodParams | undefined;
  context?: ContextScoreParams | undefined;
}

/** Context novelty (context-novelty.ts) as a second way to a high surprise (README §5c). */
export interface ContextScoreParams extends ContextParams {
  /** The novelty judged against its own history as the tail score is (same stage, its own memory). */
  likelihood: LikelihoodParams;
  /** The context surprise counts as `scale` x its value next to the level surprise (max of the two). */
  scale: number;
  /** Rows the context memory learns before its surprise counts. */
  after: number;
}

export interface LikelihoodParams {
  /** Half-life (rows) of the long-run mean and variance of the tail score. */
  halflife: number;
  /** Half-life (rows) of the short average judged against them. */
  short: number;
  /** Weight of the likelihood in the geometric mix with the tail score (0: tail only, 1: likelihood only). */
  weight: number;
}

/** Decades of the likelihood's log scale (as Numenta's log likelihood: 1e-10 scores 1). */
const LIKELIHOOD_DECADES = 10;
/** The tail score's deviation never counts as less than this (a stream never surprising so far). */
const LIKELIHOOD_MIN_SD = 0.01;

export interface OnsetState {
  /** Raw scores of the last `peak_window` rows (a ring once full: `at` is the oldest). */
  recent: number[];
  at?: number;
  /** Likelihood stage: tail scores seen, their EW mean and variance (from 0, bias-corrected on use), the short average. */
  lik?: LikState;
  /** Context novelty: the context memory and its likelihood stage's memory. */
  ctx?: ContextState;
  ctxLik?: LikState;
}

/** The onset memory as saved across restarts (the context memory in its sparse form). */
export interface SavedOnsetState extends Omit<OnsetState, 'ctx'> {
  ctx?: SavedContext;
}

export function saveOnset(st: OnsetState): SavedOnsetState {
  const { ctx, ...rest } = st;
  return { ...structuredClone(rest), ...(ctx ? { ctx: saveContext(ctx) } : {}) };
}

/** The memory a saved onset state describes; call after onsetStateProblem found nothing. */
export function restoreOnset(saved: SavedOnsetState, p: OnsetParams): OnsetState {
  const st: OnsetState = { recent: saved.recent.slice(0, p.peak_window), at: Number.isInteger(saved.at) ? saved.at! % p.peak_window : 0 };
  if (saved.lik) st.lik = { ...saved.lik };
  if (saved.ctx && p.context) st.ctx = restoreContext(saved.ctx, p.context);
  if (saved.ctxLik) st.ctxLik = { ...saved.ctxLik };
  return st;
}

interface LikState {
  n: number;
  mean: number;
  var: number;
  short: number;
}

/** The result of `onsetScore`, reused between calls (it runs once per reading and must not allocate). */
export interface OnsetResult {
  score: number;
  surprise: number;
}

/** Complementary error function (Numerical Recipes erfcc, fractional error below 1.2e-7). */
/** -log10 of the upper Gaussian tail of z, on a scale where `decades` decades score 1 (z <= 0: near 0). */
export function tailScore(z: number, decades: number): number {
  const tail = erfc(z / Math.SQRT2) / 2;
  return Math.min(1, -Math.log10(Math.max(tail, 1e-300)) / decades);
}

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
export function onsetScore(p: OnsetParams, st: OnsetState, modelError: number, obs: Pick<Observation, 'seasonalZ' | 'outOfRange' | 'stuck'> & { x?: number | undefined }, out: OnsetResult): OnsetResult {
  const z = Math.max(Math.sqrt(Math.max(0, modelError)), obs.seasonalZ);
  let raw = tailScore(z, p.decades);
  if (p.likelihood) raw = mixLikelihood(p.likelihood, (st.lik ??= newLik(raw)), raw);
  const c = p.context;
  if (c && obs.x !== undefined) {
    const ctx = (st.ctx ??= newContext(c, obs.x));
    const novelty = contextNovelty(c, ctx, obs.x);
    const lik = (st.ctxLik ??= newLik(novelty));
    const contextual = c.scale * mixLikelihood(c.likelihood, lik, novelty);
    if (lik.n > c.after && ctx.moves > c.min_moves && contextual > raw) raw = contextual;
  }
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

/** Measures the tail score against the stream's history of tail scores, then learns it (causal: before learning). */
function mixLikelihood(p: LikelihoodParams, l: LikState, raw: number): number {
  l.short += (1 - 2 ** (-1 / p.short)) * (raw - l.short);
  const w = 1 - 2 ** (-l.n / p.halflife);
  const mean = w > 0 ? l.mean / w : raw;
  const sd = Math.max(Math.sqrt(w > 0 ? l.var / w : 0), LIKELIHOOD_MIN_SD);
  const lik = tailScore((l.short - mean) / sd, LIKELIHOOD_DECADES);
  const a = 1 - 2 ** (-1 / p.halflife);
  const r = raw - mean;
  l.mean += a * (raw - l.mean);
  l.var = (1 - a) * (l.var + a * r * r);
  l.n++;
  return raw ** (1 - p.weight) * lik ** p.weight;
}

function newLik(first: number): LikState {
  return { n: 0, mean: 0, var: 0, short: first };
}

const likProblem = (l: unknown) => {
  const o = l as Partial<LikState> | null;
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  return !(o && finite(o.n) && finite(o.mean) && finite(o.var) && finite(o.short));
};

/** A saved onset memory's shape problem, or null (state saved by an earlier run or another version is refused). */
export function onsetStateProblem(o: unknown, p: OnsetParams): string | null {
  const st = o as Partial<SavedOnsetState> | null;
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
  if (!st || !Array.isArray(st.recent) || !st.recent.every(finite)) return 'onset memory malformed';
  if (p.likelihood && st.lik !== undefined && likProblem(st.lik)) return 'likelihood memory malformed';
  if (p.context) {
    if (st.ctxLik !== undefined && likProblem(st.ctxLik)) return 'context likelihood memory malformed';
    const problem = contextStateProblem(st.ctx, p.context);
    if (problem) return problem;
  }
  return null;
}

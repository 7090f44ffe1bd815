/**
 * The online baseline of one single-channel series (agent/inference/README.md, normalisation
 * "online"): statistics that keep learning for the series' whole life, so slow normal drift is
 * followed and a lasting change becomes the new normal, instead of being frozen after a warm-up.
 *
 * - level: exponentially weighted mean and variance (half-life in rows); an update's residual is
 *   clipped at `robust_clip` baseline deviations so one wild reading cannot blow up the variance.
 * - resolution: the smallest non-zero step between consecutive readings seen so far (the sensor's
 *   quantisation). The deviation used to normalise never goes below it, so a sensor constant
 *   during warm-up that then moves by one quantisation step is one step away, not infinitely far.
 * - daily context: the same statistics per hour-of-day bin (from the readings' own timestamps),
 *   used only where they explain the series much better than the level alone (a daily cycle).
 * - range: the lowest and highest readings seen, for readings far outside everything seen before.
 * - repeats: the length of the current run of identical readings and the longest run seen before,
 *   for a sensor that sticks after having varied.
 *
 * All state is plain numbers and arrays (JSON-safe), saved and restored with the runner's state.
 */

export interface OnlineParams {
  /** Rows before the first verdict; the statistics learn from them. */
  warmup: number;
  halflife: number;
  robust_clip: number;
  min_std: number;
  /** Hour-of-day bins (0 = no daily context). */
  daily_bins: number;
  bin_halflife: number;
  /** Readings a bin needs before its context counts. */
  bin_min: number;
  /** Daily context is used while (mean bin variance / level variance) stays below this. */
  seasonal_ratio: number;
}

export interface BaselineState {
  n: number;
  mean: number;
  var: number;
  prev: number;
  /** Smallest non-zero step seen; 0 = none yet. */
  resolution: number;
  hi: number;
  lo: number;
  run: number;
  longestRun: number;
  binMean: number[];
  binVar: number[];
  binCount: number[];
  /** Per bin: the day (ts / 24 h) it was last seen, and on how many different days it has been seen. */
  binDay: number[];
  binDays: number[];
  /** Smoothed ratio of the bin variance to the level variance (1 until measured). */
  seasonalRatio: number;
}

/** What the baseline says about one reading, measured before the reading is learned. */
export interface Observation {
  /** Deviation used to normalise this row's window (level standard deviation, at least the resolution). */
  scale: number;
  /** Mean used to normalise this row's window. */
  mean: number;
  /** |reading - hour-of-day mean| / bin deviation, where the daily context applies; else 0. */
  seasonalZ: number;
  /** Beyond everything seen so far by more than `margin` times the range seen (set by `observe`). */
  outOfRange: boolean;
  /** This reading makes the run of identical readings long enough to call the sensor stuck. */
  stuck: boolean;
}

export interface EventParams {
  range_margin: number;
  /** Readings seen before the range rule applies (a range from few readings is too narrow). */
  range_after: number;
  stuck_min_run: number;
  stuck_factor: number;
}

const SEASONAL_RATIO_RATE = 0.002;

export function newBaseline(p: OnlineParams): BaselineState {
  return {
    n: 0,
    mean: 0,
    var: 0,
    prev: 0,
    resolution: 0,
    hi: 0,
    lo: 0,
    run: 0,
    longestRun: 0,
    binMean: new Array<number>(p.daily_bins).fill(0),
    binVar: new Array<number>(p.daily_bins).fill(0),
    binCount: new Array<number>(p.daily_bins).fill(0),
    binDay: new Array<number>(p.daily_bins).fill(-1),
    binDays: new Array<number>(p.daily_bins).fill(0),
    seasonalRatio: 1,
  };
}

const rates = new Map<number, number>();
/** The update rate of a half-life (memoised: it is needed for every reading). */
function rate(halflife: number): number {
  let a = rates.get(halflife);
  if (a === undefined) rates.set(halflife, (a = 1 - 2 ** (-1 / halflife)));
  return a;
}

/**
 * An exponentially weighted variance started at 0 is too small by the factor 1 - 2^(-n/h) after
 * n updates (as Adam's moments are); without the correction, the first few hundred readings after
 * the warm-up would look several deviations away.
 */
function unbiased(v: number, halflife: number, n: number): number {
  if (n > 60 * halflife) return v; // the correction is below 1e-18
  const weight = 1 - 2 ** (-n / halflife);
  return weight > 0 ? v / weight : 0;
}

function hourBin(ts: number, bins: number): number {
  const hour = (((ts / 3_600_000) % 24) + 24) % 24;
  return Math.min(bins - 1, Math.floor(hour / (24 / bins)));
}

/**
 * Takes one reading: first measures it against the baseline as it stood (so a row's verdict
 * depends only on earlier rows and itself), then learns from it.
 */
export function observe(s: BaselineState, p: OnlineParams, e: EventParams, x: number, ts: number, obs: Observation = { scale: 0, mean: 0, seasonalZ: 0, outOfRange: false, stuck: false }): Observation {
  const first = s.n === 0;
  const step = first ? 0 : x - s.prev;
  if (step !== 0 && (s.resolution === 0 || Math.abs(step) < s.resolution)) s.resolution = Math.abs(step);
  if (first) s.mean = s.hi = s.lo = x;
  const scale = Math.max(Math.sqrt(unbiased(s.var, p.halflife, s.n)), s.resolution, p.min_std);
  obs.scale = scale;
  obs.mean = s.mean;
  obs.seasonalZ = 0;
  obs.outOfRange = false;
  obs.stuck = false;
  const warm = s.n >= p.warmup;

  if (p.daily_bins > 0) {
    const b = hourBin(ts, p.daily_bins);
    const count = s.binCount[b]!;
    const binScale = Math.max(Math.sqrt(unbiased(s.binVar[b]!, p.bin_halflife, count)), s.resolution, p.min_std);
    const day = Math.floor(ts / 86_400_000);
    if (day !== s.binDay[b]) {
      s.binDay[b] = day;
      s.binDays[b]!++;
    }
    // A bin says something about "this hour of the day" only once it has been seen on other days:
    // the ratio is measured from the second day, the context used from the third.
    if (count >= p.bin_min && s.binDays[b]! >= 2) {
      if (s.binDays[b]! >= 3 && s.seasonalRatio < p.seasonal_ratio) obs.seasonalZ = Math.abs(x - s.binMean[b]!) / binScale;
      s.seasonalRatio += SEASONAL_RATIO_RATE * (s.binVar[b]! / Math.max(s.var, 1e-300) - s.seasonalRatio);
    }
    if (count === 0) s.binMean[b] = x;
    else {
      const r = clip(x - s.binMean[b]!, count < p.bin_min ? Infinity : p.robust_clip * binScale);
      const a = rate(p.bin_halflife);
      s.binMean[b]! += a * r;
      s.binVar[b] = (1 - a) * (s.binVar[b]! + a * r * r);
    }
    s.binCount[b] = count + 1;
  }

  if (warm && s.n >= e.range_after && e.range_margin > 0) {
    // The range never counts as narrower than ten quantisation steps: a sensor constant so far
    // that moves by one step is not "outside everything seen".
    const range = Math.max(s.hi - s.lo, 10 * s.resolution);
    obs.outOfRange = x > s.hi + e.range_margin * range || x < s.lo - e.range_margin * range;
  }
  if (x > s.hi) s.hi = x;
  if (x < s.lo) s.lo = x;

  if (!first && step === 0) s.run++;
  else {
    if (s.run > s.longestRun) s.longestRun = s.run;
    s.run = 0;
  }
  if (warm && e.stuck_min_run > 0 && s.run === Math.max(e.stuck_min_run, e.stuck_factor * s.longestRun)) obs.stuck = true;

  const r = clip(x - s.mean, warm ? p.robust_clip * scale : Infinity);
  const a = rate(p.halflife);
  s.mean += a * r;
  s.var = (1 - a) * (s.var + a * r * r);
  s.prev = x;
  s.n++;
  return obs;
}

function clip(r: number, limit: number): number {
  return r > limit ? limit : r < -limit ? -limit : r;
}

/** Checks a saved baseline's shape (restored from the store); returns the reason it does not fit, or null. */
export function baselineProblem(s: unknown, p: OnlineParams): string | null {
  if (s === null || typeof s !== 'object') return 'not an object';
  const o = s as Record<string, unknown>;
  const num = (k: string) => typeof o[k] === 'number' && Number.isFinite(o[k]);
  for (const k of ['n', 'mean', 'var', 'prev', 'resolution', 'hi', 'lo', 'run', 'longestRun', 'seasonalRatio']) if (!num(k)) return `${k} is not a number`;
  for (const k of ['binMean', 'binVar', 'binCount', 'binDay', 'binDays']) {
    const a = o[k];
    if (!Array.isArray(a) || a.length !== p.daily_bins || !a.every((v) => typeof v === 'number' && Number.isFinite(v))) return `${k} does not have ${p.daily_bins} numbers`;
  }
  return null;
}

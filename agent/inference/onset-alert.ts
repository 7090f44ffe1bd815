/**
 * How long an "onset-tail" alert stays raised (agent/inference/README.md §6b): an alert is raised
 * at an onset and then held while the present stays away from where the series was *before* the
 * onset, not from the running baseline (which absorbs a lasting change within a few hundred rows
 * and would clear the alert while the fault goes on: SKAB's faults last hundreds of rows).
 * With `shift`, a second way in raises on a sudden shift too small for the onset score (a valve
 * half closed): the short average `shift.z` running deviations from the running mean for
 * `shift.rows` rows in a row, at most `shift.within` rows after it was within `shift.low` of it.
 * "Sudden" is what keeps normal drift and daily cycles out: they keep the present one to two
 * deviations from an exponentially weighted mean for hundreds of rows, but arrive there slowly.
 * A fast oscillation is sudden too (a sine's peak sits about √2 deviations from its mean), so with
 * `shift.range_halflife` the shift must also go `range_margin` deviations past the highs and lows
 * the short average has swung over lately (as they stood when it was last near the mean), and
 * nothing is raised in the rule's first `after` rows: the demo's healthy sines stay quiet (2.1
 * raised 6 alerts in 20 s on them). The first swing of a slow oscillation (period ≳ 500 rows)
 * still looks like a shift: the range it will swing over is not known yet.
 *
 *   xs        = exponential average of the readings (half-life `departure_halflife` rows)
 *   departure = tail score of |xs - reference mean| / reference deviation (the baseline as it
 *               stood on the row that raised the alert), on the onset score's log scale
 *   raise     : score >= on (the onset score; hysteresis.ts), or the sudden-shift rule
 *   clear     : departure < off for off_count rows, never before `min_rows` rows in alert;
 *               always after `max_rows` rows (the change has become the new normal: re-arm)
 *
 * Everything here runs in row order after the model (it depends on the previous row's alert),
 * and lives in the key's hold memory, saved with the rest of its state.
 */
import type { AlertState } from './hysteresis.js';
import { tailScore } from './onset-score.js';

export interface HoldParams {
  departure_halflife: number;
  min_rows: number;
  max_rows: number;
  shift?: { z: number; rows: number; low: number; within: number; range_halflife?: number | undefined; range_margin?: number | undefined; after?: number | undefined } | undefined;
}

export interface HoldState {
  /** Short average of the readings (undefined before the first verdict). */
  xs?: number;
  refMean?: number;
  refScale?: number;
  /** Rows in a row the short average has been `shift.z` deviations away (while not in alert). */
  shiftRun?: number;
  /** Rows since the short average was last within `shift.low` deviations of the running mean. */
  sinceLow?: number;
  /** The range the short average has spanned lately: its highest and lowest, each decaying towards the running mean. */
  hi?: number;
  lo?: number;
  /** That range as it stood on the last row the short average was within `shift.low` of the running mean. */
  refHi?: number;
  refLo?: number;
  /** Rows this rule has watched (after the warm-up). */
  rows?: number;
}

/** What the baseline said about a row, before learning it. */
export interface RowLevel {
  x: number;
  mean: number;
  scale: number;
}

/** The sudden-shift rule for this row (call after `holdClearValue`, which moves the short average). */
export function shiftRaise(p: HoldParams, st: HoldState, row: RowLevel, alert: AlertState): boolean {
  const sh = p.shift;
  if (!sh || st.xs === undefined) return false;
  const dev = Math.abs(st.xs - row.mean) / row.scale;
  if (sh.range_halflife !== undefined) {
    const k = 1 - 2 ** (-1 / sh.range_halflife);
    st.hi = Math.max(st.xs, st.hi === undefined ? st.xs : st.hi - k * (st.hi - row.mean));
    st.lo = Math.min(st.xs, st.lo === undefined ? st.xs : st.lo - k * (st.lo - row.mean));
  }
  st.rows = Math.min((st.rows ?? 0) + 1, Number.MAX_SAFE_INTEGER - 1);
  if (alert.alert) return false;
  st.sinceLow = dev <= sh.low ? 0 : (st.sinceLow ?? Number.MAX_SAFE_INTEGER - 1) + 1;
  // Beyond the series' own recent range as it stood when the short average was last near the
  // mean: a healthy oscillation keeps coming back to the highs and lows it has already reached.
  let beyond = true;
  if (sh.range_halflife !== undefined) {
    if (st.sinceLow === 0) {
      st.refHi = st.hi;
      st.refLo = st.lo;
    }
    const margin = (sh.range_margin ?? 0) * row.scale;
    beyond = st.refHi === undefined || st.xs > st.refHi! + margin || st.xs < st.refLo! - margin;
  }
  st.shiftRun = dev >= sh.z && st.sinceLow <= sh.within && beyond && st.rows > (sh.after ?? 0) ? (st.shiftRun ?? 0) + 1 : 0;
  return st.shiftRun >= sh.rows;
}

/** The value the alert rule judges clearing on for this row: the departure from the pre-onset reference. */
export function holdClearValue(p: HoldParams, st: HoldState, row: RowLevel, alert: AlertState, alertRows: number, decades: number): number {
  st.xs = st.xs === undefined ? row.x : st.xs + (1 - 2 ** (-1 / p.departure_halflife)) * (row.x - st.xs);
  if (!alert.alert) return 0;
  if (alertRows < p.min_rows) return Infinity;
  return st.refScale ? tailScore(Math.abs(st.xs - st.refMean!) / st.refScale, decades) : 0;
}

/** After the alert rule: clears an alert held `max_rows`, and takes the reference on the row that raised one. */
export function holdAfter(p: HoldParams, st: HoldState, row: RowLevel, alert: AlertState, alertRows: number, changed: boolean): boolean {
  if (alert.alert && alertRows + 1 >= p.max_rows) {
    alert.alert = false;
    alert.streak = 0;
    changed = true;
  }
  if (changed && alert.alert) {
    st.refMean = row.mean;
    st.refScale = row.scale;
  }
  return changed;
}

/** A restored hold memory's shape problem, or null. */
export function holdStateProblem(o: unknown): string | null {
  if (o === undefined) return null;
  if (o === null || typeof o !== 'object') return 'alert hold memory is not an object';
  for (const [k, v] of Object.entries(o as Record<string, unknown>)) {
    if (!['xs', 'refMean', 'refScale', 'shiftRun', 'sinceLow', 'hi', 'lo', 'refHi', 'refLo', 'rows'].includes(k)) return `alert hold memory has an unknown field ${k}`;
    if (typeof v !== 'number' || !Number.isFinite(v)) return `alert hold memory field ${k} is not a finite number`;
  }
  return null;
}

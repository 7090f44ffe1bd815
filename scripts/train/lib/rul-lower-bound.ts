/**
 * `service_within = max(0, rul - (margin + spread · rul_sd))`: the life an operator can count on.
 * margin and spread are chosen on out-of-fold predictions so that, over the cycles whose true RUL
 * is at most the cap (where a recommendation matters), the true RUL is below the bound for at
 * most 1 - coverage of them, with the smallest mean distance below the prediction. The coverage
 * reached is cross-checked: fitted on half of the engines, measured on the other half.
 */
import { stepAlert, type AlertRule } from '../../../agent/inference/hysteresis.js';
import type { Engine } from './datasets.js';
import type { Oof } from './rul-kfold.js';

export interface LowerBoundFit {
  margin: number;
  spread: number;
  target_coverage: number;
  /** Coverage of the chosen bound on the cycles it was chosen on. */
  coverage_in_sample: number;
  /** Bound fitted on even-numbered engines measured on odd ones and vice versa, pooled. */
  coverage_cross_checked: number;
  /** Mean of rul - service_within over the scored cycles (how much earlier than the point estimate). */
  mean_slack: number;
  cycles: number;
}

interface Point {
  mean: number;
  sd: number;
  truth: number;
  engine: number;
}

const MARGINS = Array.from({ length: 61 }, (_, i) => i);
const SPREADS = [0, 0.5, 1, 1.5, 2, 2.5, 3, 4, 5];

function points(engines: Engine[], oofs: Oof[], cap: number): Point[] {
  const out: Point[] = [];
  for (const oof of oofs)
    engines.forEach((e, i) => {
      const len = e.rows.length;
      for (let t = 0; t < len; t++) {
        const truth = len - (t + 1);
        if (truth <= cap) out.push({ mean: oof.mean[i]![t]!, sd: oof.sd[i]![t]!, truth, engine: i });
      }
    });
  return out;
}

function coverageOf(ps: Point[], margin: number, spread: number): { coverage: number; slack: number } {
  let ok = 0;
  let slack = 0;
  for (const p of ps) {
    const bound = Math.max(0, p.mean - (margin + spread * p.sd));
    if (p.truth >= bound) ok++;
    slack += p.mean - bound;
  }
  return { coverage: ok / ps.length, slack: slack / ps.length };
}

function fitOn(ps: Point[], target: number): { margin: number; spread: number } {
  let best = { margin: MARGINS[MARGINS.length - 1]!, spread: SPREADS[SPREADS.length - 1]!, slack: Infinity };
  for (const spread of SPREADS)
    for (const margin of MARGINS) {
      const c = coverageOf(ps, margin, spread);
      if (c.coverage >= target) {
        if (c.slack < best.slack) best = { margin, spread, slack: c.slack };
        break; // larger margins only add slack
      }
    }
  return { margin: best.margin, spread: best.spread };
}

export function calibrateLowerBound(engines: Engine[], oofs: Oof[], cap: number, target: number): LowerBoundFit {
  const ps = points(engines, oofs, cap);
  const chosen = fitOn(ps, target);
  const inSample = coverageOf(ps, chosen.margin, chosen.spread);
  const even = ps.filter((p) => p.engine % 2 === 0);
  const odd = ps.filter((p) => p.engine % 2 === 1);
  const a = fitOn(even, target);
  const b = fitOn(odd, target);
  const ca = coverageOf(odd, a.margin, a.spread).coverage;
  const cb = coverageOf(even, b.margin, b.spread).coverage;
  return {
    ...chosen,
    target_coverage: target,
    coverage_in_sample: inSample.coverage,
    coverage_cross_checked: (ca * odd.length + cb * even.length) / ps.length,
    mean_slack: inSample.slack,
    cycles: ps.length,
  };
}

export interface AlertLeads {
  engines: number;
  /** Engines whose alert was raised before their last cycle. */
  alerted: number;
  /** True cycles left when the alert first rose: min / median / max. */
  lead: { min: number; median: number; max: number };
  /** First alerts with more than `earlyAfter` true cycles left. */
  early: number;
  /** First alerts with fewer than `lateBefore` true cycles left (or none at all). */
  late: number;
}

/** Runs the alert rule over each engine's whole out-of-fold trajectory of `service_within`. */
export function alertLeads(engines: Engine[], oof: Oof, lower: { margin: number; spread: number }, rule: AlertRule, earlyAfter: number, lateBefore: number): AlertLeads {
  const leads: number[] = [];
  let late = 0;
  engines.forEach((e, i) => {
    const state = { alert: false, streak: 0 };
    let first = -1;
    for (let t = 0; t < e.rows.length && first < 0; t++) {
      const bound = Math.max(0, oof.mean[i]![t]! - (lower.margin + lower.spread * oof.sd[i]![t]!));
      if (stepAlert(rule, state, bound).alert) first = t;
    }
    if (first < 0) late++;
    else {
      const lead = e.rows.length - (first + 1);
      leads.push(lead);
      if (lead < lateBefore) late++;
    }
  });
  leads.sort((x, y) => x - y);
  return {
    engines: engines.length,
    alerted: leads.length,
    lead: { min: leads[0] ?? NaN, median: leads[Math.floor(leads.length / 2)] ?? NaN, max: leads[leads.length - 1] ?? NaN },
    early: leads.filter((l) => l > earlyAfter).length,
    late,
  };
}

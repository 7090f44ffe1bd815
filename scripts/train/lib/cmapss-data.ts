/** C-MAPSS FD001 preparation: informative columns, seeded engine split, capped RUL targets, windows. */
import type { Engine } from './datasets.js';
import { Prng } from './prng.js';
import { normalise, windowsAt, type SeriesSpec } from './contract.js';

/** The 14 sensors that vary in FD001 (the 3 settings and 7 sensors left out are constant or noise). */
export const CMAPSS_FEATURES = ['s2', 's3', 's4', 's7', 's8', 's9', 's11', 's12', 's13', 's14', 's15', 's17', 's20', 's21'];
const COLUMN = (name: string): number => 2 + Number(name.slice(1));

export function featureRows(e: Engine): number[][] {
  return e.rows.map((r) => CMAPSS_FEATURES.map((f) => r[COLUMN(f)]!));
}

/** Seeded split of whole engines: `holdOut` of them for validation. */
export function splitEngines(engines: Engine[], holdOut: number, seed: number): { train: Engine[]; valid: Engine[] } {
  const order = engines.map((_, i) => i);
  new Prng(seed).shuffle(order);
  const validIdx = new Set(order.slice(0, holdOut));
  return { train: engines.filter((_, i) => !validIdx.has(i)), valid: engines.filter((_, i) => validIdx.has(i)) };
}

export function fixedStats(engines: Engine[]): { mean: number[]; std: number[] } {
  const f = CMAPSS_FEATURES.length;
  const mean = new Array<number>(f).fill(0);
  const sq = new Array<number>(f).fill(0);
  let n = 0;
  for (const e of engines)
    for (const r of featureRows(e)) {
      n++;
      r.forEach((v, k) => (mean[k]! += v));
    }
  for (let k = 0; k < f; k++) mean[k]! /= n;
  for (const e of engines) for (const r of featureRows(e)) r.forEach((v, k) => (sq[k]! += (v - mean[k]!) ** 2));
  return { mean, std: sq.map((s) => Math.sqrt(s / n)) };
}

export function rulTargets(e: Engine, cap: number): number[] {
  const last = e.rows.length;
  return e.rows.map((_, t) => Math.min(cap, last - (t + 1)));
}

/** Every row's window (edge-padded) of every engine, with its capped RUL. */
export function engineWindows(engines: Engine[], spec: SeriesSpec, cap: number): { x: Float32Array; y: Float32Array; n: number } {
  const f = CMAPSS_FEATURES.length;
  const xs: Float32Array[] = [];
  const ys: number[] = [];
  for (const e of engines) {
    const z = normalise(spec, featureRows(e), f);
    xs.push(windowsAt(z, f, spec.window, e.rows.map((_, t) => t)));
    ys.push(...rulTargets(e, cap));
  }
  const x = new Float32Array(xs.reduce((s, a) => s + a.length, 0));
  let at = 0;
  for (const a of xs) {
    x.set(a, at);
    at += a.length;
  }
  return { x, y: Float32Array.from(ys), n: ys.length };
}

/** Seeded cut points per held-out engine, emulating the test set's truncated trajectories. */
export function truncationPoints(engines: Engine[], perEngine: number, seed: number, minCycles: number): { engine: number; cycle: number }[] {
  const rng = new Prng(seed);
  const out: { engine: number; cycle: number }[] = [];
  engines.forEach((e, i) => {
    const len = e.rows.length;
    const lo = Math.min(minCycles, len);
    for (let k = 0; k < perEngine; k++) out.push({ engine: i, cycle: lo + rng.int(len - lo + 1) });
  });
  return out;
}

import { Ewma } from './calibration.js';
import type { AlertState } from './hysteresis.js';
import { baselineProblem, type BaselineState, type OnlineParams } from './online-baseline.js';
import { onsetStateProblem, restoreOnset, saveOnset, type OnsetParams, type OnsetState, type SavedOnsetState } from './onset-score.js';
import { holdStateProblem, type HoldState } from './onset-alert.js';

/**
 * A series' state in a ModelRunner (model-runner.ts), and that state as it is saved between runs
 * (the store's inference_state, bound to the model's sha256 by the caller): copied for a run of
 * rows it must not learn from, saved, and restored only when it fits the model.
 */

/**
 * The largest saved state of one key the agent parses (characters of its JSON): stream-ad's is
 * about 12 KB (the context table's 4,096 counts, context-novelty.ts); a manifest's largest
 * allowed tables stay well below this. A larger row is not one we wrote: refused before parsing.
 */
export const MAX_SAVED_STATE_CHARS = 1_000_000;

/** Parses one key's saved state (from the store), refusing an oversized or non-JSON text with the reason. */
export function parseSavedState(text: string): SavedKeyState {
  if (text.length > MAX_SAVED_STATE_CHARS) throw new Error(`saved state is ${text.length} characters, more than the ${MAX_SAVED_STATE_CHARS} allowed`);
  const o: unknown = JSON.parse(text);
  if (o === null || typeof o !== 'object' || Array.isArray(o)) throw new Error('saved state is not a JSON object');
  return o as SavedKeyState;
}

/** A key's state as persisted between runs (JSON). */
export interface SavedKeyState {
  rows: number;
  warm: number[][] | null;
  warmTs: number[] | null;
  mean: number[];
  std: number[];
  ring: number[];
  ringTs: number[];
  first: number[] | null;
  firstTs: number;
  ewma: number | null;
  q: number;
  alert: AlertState;
  /** Verdicts in a row with the alert raised (normalisation.relearn_after); absent in older states. */
  alertRows?: number;
  /** Normalisation "online" only: the baseline, the onset score's memory, the last W raw values, the alert hold's memory. */
  online?: { baseline: BaselineState; onset: SavedOnsetState; raw: number[]; hold?: HoldState };
}

/** Per-key state: normalisation, the last W normalised rows, calibration, smoothing, hysteresis. */
export interface KeyState {
  rows: number;
  warm: number[][] | null;
  warmTs: number[] | null;
  mean: Float64Array;
  std: Float64Array;
  ring: Float32Array;
  ringTs: Float64Array;
  first: Float32Array | null;
  firstTs: number;
  ewma: Ewma;
  calibration: number[];
  q: number;
  alert: AlertState;
  alertRows: number;
  online?: { baseline: BaselineState; onset: OnsetState; raw: Float64Array; hold: HoldState };
}

/** What a saved state must fit: the model's window and features, its smoothing, its online baseline. */
export interface KeyShape {
  modelId: string;
  window: number;
  features: number;
  ewmaHalflife: number;
  online?: { params: OnlineParams; onset: OnsetParams };
}

/** An exact copy of a key's state (not warming up), to put back after a row it must not learn from. */
export function copyKeyState(s: KeyState, shape: KeyShape): KeyState {
  return {
    ...s,
    mean: s.mean.slice(),
    std: s.std.slice(),
    ring: s.ring.slice(),
    ringTs: s.ringTs.slice(),
    first: s.first ? s.first.slice() : null,
    ewma: new Ewma(shape.ewmaHalflife, s.ewma.current),
    calibration: [...s.calibration],
    alert: { ...s.alert },
    ...(s.online ? { online: { baseline: structuredClone(s.online.baseline), onset: structuredClone(s.online.onset), raw: s.online.raw.slice(), hold: structuredClone(s.online.hold) } } : {}),
  };
}

/** One key's state as plain data (copies: the key may go on changing). */
export function saveKeyState(s: KeyState): SavedKeyState {
  return {
    rows: s.rows,
    warm: s.warm,
    warmTs: s.warmTs,
    mean: [...s.mean],
    std: [...s.std],
    ring: [...s.ring],
    ringTs: [...s.ringTs],
    first: s.first ? [...s.first] : null,
    firstTs: s.firstTs,
    ewma: s.ewma.current ?? null,
    q: s.q,
    alert: { ...s.alert },
    alertRows: s.alertRows,
    ...(s.online ? { online: { baseline: structuredClone(s.online.baseline), onset: saveOnset(s.online.onset), raw: [...s.online.raw], hold: { ...s.online.hold } } } : {}),
  };
}

/** A key's state from what `saveKeyState` made; a state of another shape is refused with the reason. */
export function restoreKeyState(key: string, saved: SavedKeyState, shape: KeyShape): KeyState {
  const per = shape.window * shape.features;
  const okLen = (a: unknown, n: number) => Array.isArray(a) && a.length === n && a.every((x) => typeof x === 'number' && Number.isFinite(x));
  if (
    !Number.isInteger(saved.rows) ||
    !okLen(saved.mean, shape.features) ||
    !okLen(saved.std, shape.features) ||
    !okLen(saved.ring, per) ||
    !okLen(saved.ringTs, shape.window) ||
    (saved.first !== null && !okLen(saved.first, shape.features)) ||
    (saved.warm !== null && (!Array.isArray(saved.warm) || !saved.warm.every((r) => okLen(r, shape.features)))) ||
    typeof saved.q !== 'number' ||
    typeof saved.alert?.alert !== 'boolean'
  ) {
    throw new Error(`saved state of key ${key} does not fit model ${shape.modelId} (window ${shape.window}, ${shape.features} features)`);
  }
  let online: KeyState['online'];
  if (shape.online) {
    const o = saved.online;
    const problem = o ? (baselineProblem(o.baseline, shape.online.params) ?? onsetStateProblem(o.onset, shape.online.onset) ?? holdStateProblem(o.hold)) : 'no online baseline';
    if (problem || !o || !okLen(o.raw, shape.window)) {
      throw new Error(`saved state of key ${key} does not fit model ${shape.modelId}: ${problem ?? 'raw window malformed'}`);
    }
    online = { baseline: structuredClone(o.baseline), onset: restoreOnset(o.onset, shape.online.onset), raw: Float64Array.from(o.raw), hold: { ...(o.hold ?? {}) } };
  }
  return {
    rows: saved.rows,
    warm: saved.warm,
    warmTs: saved.warmTs,
    mean: Float64Array.from(saved.mean),
    std: Float64Array.from(saved.std),
    ring: Float32Array.from(saved.ring),
    ringTs: Float64Array.from(saved.ringTs),
    first: saved.first ? Float32Array.from(saved.first) : null,
    firstTs: saved.firstTs,
    ewma: new Ewma(shape.ewmaHalflife, saved.ewma ?? undefined),
    calibration: [],
    q: saved.q,
    alert: { alert: saved.alert.alert, streak: saved.alert.streak },
    alertRows: Number.isInteger(saved.alertRows) ? saved.alertRows! : 0,
    ...(online ? { online } : {}),
  };
}

import type { Row } from './model-runner.js';

interface KeyCadence {
  lastTs: number;
  lastValues: readonly number[];
  intervalMs: number;
  seen: number;
  /** Real rows still to come whose window holds a filled row. */
  filledAhead: number;
}

/** Intervals a key needs before its gaps are filled (its cadence is known). */
const WARMUP = 10;
const ALPHA = 0.1;
/** A pause of more than this many learned intervals (and at least MIN_GAP_MS) is a gap. */
export const GAP_FACTOR = 3;
const MIN_GAP_MS = 1000;

export interface FilledRows {
  rows: Row[];
  /** Per row: filled (made here, no reading behind it). */
  synthetic: boolean[];
  /** Per row: its window holds a filled row (verdict flag `filled`, docs/wire-format.md §12.3). */
  windowFilled: boolean[];
}

/**
 * Gap filling for the models only (agent/inference/README.md, "Gaps"): a window with missing
 * readings would hand the model a time-compressed series (a step where there was a ramp), so
 * when a key's rows pause for more than GAP_FACTOR learned intervals the missing rows are
 * interpolated linearly between the rows either side, at most one window's worth (older ones
 * could not reach any window), at evenly spaced times. Filled rows carry no reading id; their
 * verdicts are not kept, and the verdicts of the next `window` real rows say `filled`. The stored
 * readings are never touched.
 */
export class GapFiller {
  private readonly keys = new Map<string, KeyCadence>();

  constructor(
    private readonly window: number,
    private readonly maxKeys = 100_000,
  ) {}

  fill(input: readonly Row[]): FilledRows {
    const out: FilledRows = { rows: [], synthetic: [], windowFilled: [] };
    for (const row of input) {
      let k = this.keys.get(row.key);
      if (!k) {
        if (this.keys.size >= this.maxKeys) this.keys.delete(this.keys.keys().next().value!);
        this.keys.set(row.key, (k = { lastTs: row.ts, lastValues: row.values, intervalMs: 0, seen: 0, filledAhead: 0 }));
        this.push(out, row, false, false);
        continue;
      }
      const dt = row.ts - k.lastTs;
      if (dt > 0 && k.seen >= WARMUP && dt > Math.max(MIN_GAP_MS, GAP_FACTOR * k.intervalMs)) {
        const missing = Math.min(this.window, Math.round(dt / k.intervalMs) - 1);
        for (let j = 1; j <= missing; j++) {
          const a = j / (missing + 1);
          const values = row.values.map((v, f) => k!.lastValues[f]! + a * (v - k!.lastValues[f]!));
          this.push(out, { key: row.key, ts: Math.round(k.lastTs + a * dt), values }, true, true);
        }
        // The windows of the next window - 1 rows, this one included, reach back over a filled row.
        if (missing > 0) k.filledAhead = this.window - 1;
      } else if (dt > 0) {
        k.intervalMs = k.seen === 0 ? dt : k.intervalMs + ALPHA * (dt - k.intervalMs);
        k.seen++;
      } else if (dt < 0) {
        k.seen = 0; // time went back: learn the cadence afresh
      }
      k.lastTs = row.ts;
      k.lastValues = row.values;
      this.push(out, row, false, k.filledAhead > 0);
      if (k.filledAhead > 0) k.filledAhead--;
    }
    return out;
  }

  forget(key: string): void {
    this.keys.delete(key);
  }

  private push(out: FilledRows, row: Row, synthetic: boolean, filled: boolean): void {
    out.rows.push(row);
    out.synthetic.push(synthetic);
    out.windowFilled.push(filled);
  }
}

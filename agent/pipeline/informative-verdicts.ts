import type { Verdict } from '../identity/verdict-format.js';
import { VERDICT_FLAGS } from '../identity/batch-v3.js';

/** Series whose last keyframe time is remembered; past it the map starts again (an early keyframe, no loss). */
const MAX_KEYFRAME_SERIES = 100_000;

/**
 * inference.verdicts informative (issue 13; docs/wire-format.md §12.12 "Which verdicts a batch
 * carries"): a verdict is kept when it raises or clears an alert, while an alert stands (every
 * score the alert relies on), when it has flags (`unlearned` alone is not news: a maintenance
 * window would keep every verdict), or as its series' keyframe, the first one and
 * then one per `keyframeMs` of the readings' time (a clock stepped back starts a keyframe). A
 * series is model + key.
 */
export class InformativeVerdicts {
  private readonly lastKeptTs = new Map<string, number>();

  constructor(private readonly keyframeMs: number) {}

  keep(v: Verdict): boolean {
    const series = `${v.modelId}\u0000${v.key}`;
    const last = this.lastKeptTs.get(series);
    const keyframe = last === undefined || v.ts - last >= this.keyframeMs || v.ts < last;
    if (!(v.changed || v.alert || ((v.flags ?? 0) & ~VERDICT_FLAGS.unlearned) !== 0 || keyframe)) return false;
    if (this.lastKeptTs.size >= MAX_KEYFRAME_SERIES && last === undefined) this.lastKeptTs.clear();
    this.lastKeptTs.set(series, v.ts);
    return true;
  }
}

import { columnStats, Ewma, quantile, scoreOf } from './calibration.js';
import { stepAlert, type AlertRule } from './hysteresis.js';
import { followBaseline, followRates, followSpread, FOLLOW_STD_CLIP } from './baseline.js';
import type { ModelEntry } from './manifest.js';
import { newBaseline, observe, type EventParams, type Observation, type OnlineParams } from './online-baseline.js';
import { onsetScore, type OnsetParams, type OnsetResult } from './onset-score.js';
import { holdAfter, holdClearValue, shiftRaise, type HoldParams } from './onset-alert.js';
import { MAX_RUN_BATCH, type OnnxModel, type ModelOutputs } from './onnx-model.js';
import type { Verdict } from '../identity/verdict-format.js';
import { VERDICT_FLAGS } from '../identity/batch-v3.js';
import { copyKeyState, restoreKeyState, saveKeyState, type KeyShape, type KeyState, type SavedKeyState } from './key-state.js';

export type { Verdict };

/** One row of one key (a sensor, or an asset of a multivariate model), raw values in feature order. */
export interface Row {
  key: string;
  /** Time of the row, ms since the epoch. */
  ts: number;
  values: readonly number[];
  /** Id of the stored reading that completed this row (live), carried into its verdict. */
  ref?: number;
}

export interface RunnerStats {
  rows: number;
  windows: number;
  runs: number;
  inferenceMs: number;
  /** Windows whose model outputs were not finite: no verdict, counted here. */
  nonFinite: number;
}

interface Job {
  state: KeyState;
  key: string;
  kind: 'calibrate' | 'calibrated' | 'verdict';
  ts: number;
  windowStart: number;
  rowIndex: number;
  ref?: number;
  /** Normalisation "online": what the baseline said about the row (plain fields: no object per reading). */
  seasonalZ?: number;
  outOfRange?: boolean;
  stuck?: boolean;
  /** The reading and the baseline it was measured against (the alert hold, onset-alert.ts). */
  x?: number;
  mean?: number;
  scale?: number;
}

/**
 * Runs one model over rows of many keys, as agent/inference/README.md specifies. Strictly causal:
 * a row's verdict depends on that row and earlier rows of its key only. `push` gathers every window
 * the rows produce into batched `session.run` calls, then applies smoothing and hysteresis in row order.
 */
export class ModelRunner {
  readonly entry: ModelEntry;
  /** The alert rule in force: the manifest's, with the binding's `alert` overrides. */
  readonly rule: ModelEntry['alert'];
  readonly stats: RunnerStats = { rows: 0, windows: 0, runs: 0, inferenceMs: 0, nonFinite: 0 };
  private readonly keys = new Map<string, KeyState>();
  /** Keys in a run of rows they must not learn from: the copy those rows are scored on (scoreUnlearned). */
  private readonly shadows = new Map<string, KeyState>();
  private readonly w: number;
  private readonly f: number;
  private readonly warmup: number | undefined;
  /** Per-feature rates of the drift-following baseline, when the manifest asks for one. */
  private readonly follow: Float64Array | undefined;
  private readonly followClip: number;
  /** Rates while a key is in alert (normalisation.follow_in_alert); undefined: the same as outside. */
  private readonly followInAlert: Float64Array | undefined;
  private readonly followsAlert: boolean;
  /** Rows in alert after which the key's baseline moves to its last window's level (normalisation.relearn_after). */
  private readonly relearnAfter: number | undefined;
  /** Rate and clip of the noise-following standard deviation (normalisation.follow_std), when asked for. */
  private readonly followStd: { rate: number; clip: number; minStd: number } | undefined;
  private readonly online: { params: OnlineParams; events: EventParams; onset: OnsetParams; hold: HoldParams | undefined } | undefined;
  private buf = new Float32Array(0);
  private readonly obs: Observation = { scale: 0, mean: 0, seasonalZ: 0, outOfRange: false, stuck: false };
  private readonly onset: OnsetResult = { score: 0, surprise: 0 };
  private jobs: Job[] = [];

  constructor(
    private readonly model: OnnxModel,
    options: { warmup?: number; alert?: Partial<Pick<AlertRule, 'on' | 'off' | 'on_count' | 'off_count'>> } = {},
  ) {
    this.entry = model.entry;
    this.rule = { ...this.entry.alert, ...options.alert };
    // Hysteresis needs the clear level on the far side of the raise level (README §6).
    const { direction, on, off } = this.rule;
    if (direction === 'above' ? off > on : off < on) throw new Error(`alert.off ${off} must be ${direction === 'above' ? 'at or below' : 'at or above'} alert.on ${on} for model ${this.entry.id} (direction ${direction})`);
    this.followClip = (this.entry.normalisation.type === 'warmup' ? this.entry.normalisation.follow_clip : undefined) ?? this.entry.clip;
    const warmupNorm = this.entry.normalisation.type === 'warmup' ? this.entry.normalisation : undefined;
    this.relearnAfter = warmupNorm?.relearn_after;
    // Both make a row's normalisation depend on the previous row's verdict.
    this.followsAlert = (warmupNorm?.follow_in_alert !== undefined && warmupNorm.follow_in_alert !== 1) || this.relearnAfter !== undefined || warmupNorm?.follow_std !== undefined;
    if (warmupNorm?.follow_std !== undefined) this.followStd = { rate: 1 - 2 ** (-1 / warmupNorm.follow_std), clip: warmupNorm.follow_std_clip ?? FOLLOW_STD_CLIP, minStd: warmupNorm.min_std };
    this.w = model.window;
    this.f = model.features;
    const n = this.entry.normalisation;
    if (n.type === 'warmup') {
      this.warmup = options.warmup ?? n.warmup;
      if (this.warmup < this.w) throw new Error(`model ${this.entry.id}: warmup ${this.warmup} is shorter than the window ${this.w}`);
      if (n.follow) this.follow = followRates(n.follow);
      if (this.follow && n.follow_in_alert !== undefined && n.follow_in_alert !== 1) this.followInAlert = this.follow.map((a) => a * n.follow_in_alert!);
    } else if (n.type === 'online') {
      const warmup = options.warmup ?? n.warmup;
      if (warmup < this.w) throw new Error(`model ${this.entry.id}: warmup ${warmup} is shorter than the window ${this.w}`);
      const c = this.entry.score?.calibration;
      if (c?.type !== 'onset-tail') throw new Error(`model ${this.entry.id}: normalisation "online" needs calibration "onset-tail"`);
      this.warmup = warmup;
      this.online = {
        params: { ...n, warmup },
        events: { range_margin: c.range_margin, range_after: c.range_after, stuck_min_run: c.stuck_min_run, stuck_factor: c.stuck_factor },
        onset: c,
        hold: c.hold,
      };
    } else if (options.warmup !== undefined) {
      throw new Error(`model ${this.entry.id} uses fixed normalisation: a warmup does not apply`);
    }
  }

  get keyCount(): number {
    return this.keys.size;
  }

  /** Rows in one window of the model. */
  get window(): number {
    return this.w;
  }

  /** Rows a key needs before its first verdict (0 for fixed normalisation). */
  get warmupRows(): number {
    return this.warmup ?? 0;
  }

  /** The keys (series) with state. */
  keyNames(): string[] {
    return [...this.keys.keys()];
  }

  /** Forgets a key's state: its next row starts a fresh baseline and warm-up. Returns whether it had state. */
  resetKey(key: string): boolean {
    this.shadows.delete(key);
    return this.keys.delete(key);
  }

  /** Each key's state as JSON-safe data, to persist across restarts (bound to the model's sha256 by the caller). */
  exportState(): Map<string, SavedKeyState> {
    const out = new Map<string, SavedKeyState>();
    for (const [key, s] of this.keys) out.set(key, saveKeyState(s));
    return out;
  }

  /**
   * Scores rows the series must not learn from: readings quarantined or in maintenance (the guard
   * stage's flags; verdict bits `unlearned` and `suppressed`, docs/wire-format.md §12.3). A run of
   * such rows of a key is scored on a shadow, a copy of the key's state taken at the run's first
   * row, so a sustained fault in a maintenance window is judged as it would have been; the key's
   * own state (baseline, calibration, smoothing, window, alert) never moves, and its next
   * ordinary row drops the shadow. A key not seen yet or still warming up has nothing to be
   * scored against (null). The verdict keeps the key's alert state (`changed` false); the one
   * whose shadow raised the alert says `suppressed`.
   */
  async scoreUnlearned(rows: readonly Row[]): Promise<(Verdict | null)[]> {
    const out: (Verdict | null)[] = [];
    for (const row of rows) {
      const real = this.keys.get(row.key);
      if (!real || real.warm !== null || (real.online !== undefined && real.rows <= this.warmup!)) {
        out.push(null);
        continue;
      }
      const shadow = this.shadows.get(row.key) ?? copyKeyState(real, this.shape);
      let v: Verdict | null | undefined;
      this.keys.set(row.key, shadow);
      try {
        [v] = await this.pushBatch([row]);
      } finally {
        this.keys.set(row.key, real);
        this.shadows.set(row.key, shadow);
      }
      if (v) {
        const raised = v.changed && v.alert;
        v.alert = real.alert.alert;
        v.changed = false;
        v.flags = (v.flags ?? 0) | VERDICT_FLAGS.unlearned | (raised ? VERDICT_FLAGS.suppressed : 0);
      }
      out.push(v ?? null);
    }
    return out;
  }

  /** Restores one key saved by `exportState`; a state of another shape is refused with the reason. */
  importState(key: string, saved: SavedKeyState): void {
    this.keys.set(key, restoreKeyState(key, saved, this.shape));
  }

  /** What a key's saved state must fit (key-state.ts). */
  private get shape(): KeyShape {
    return { modelId: this.entry.id, window: this.w, features: this.f, ewmaHalflife: this.entry.score?.ewma_halflife ?? 0, ...(this.online ? { online: this.online } : {}) };
  }

  /** One entry per row, in order: a verdict, or null while warming up or before the first window. */
  async push(rows: readonly Row[]): Promise<(Verdict | null)[]> {
    // An ordinary row ends its key's run of unlearned rows.
    if (this.shadows.size > 0) for (const r of rows) this.shadows.delete(r.key);
    if (!this.followsAlert) return this.pushBatch(rows);
    // The baseline's rate depends on the key's alert state after the previous row, so a key's
    // rows are scored one at a time; rows of different keys still share each run ("waves").
    const queues = new Map<string, number[]>();
    rows.forEach((r, i) => {
      const q = queues.get(r.key);
      if (q) q.push(i);
      else queues.set(r.key, [i]);
    });
    const results: (Verdict | null)[] = new Array<Verdict | null>(rows.length).fill(null);
    const longest = Math.max(0, ...[...queues.values()].map((q) => q.length));
    for (let j = 0; j < longest; j++) {
      const wave: number[] = [];
      for (const q of queues.values()) if (j < q.length) wave.push(q[j]!);
      wave.sort((a, b) => a - b);
      const out = await this.pushBatch(wave.map((i) => rows[i]!));
      wave.forEach((i, k) => (results[i] = out[k]!));
    }
    return results;
  }

  private async pushBatch(rows: readonly Row[]): Promise<(Verdict | null)[]> {
    this.jobs = [];
    let windows = 0;
    for (let i = 0; i < rows.length; i++) windows = this.accept(rows[i]!, i, windows);
    const results: (Verdict | null)[] = new Array<Verdict | null>(rows.length).fill(null);
    if (windows === 0) return results;
    const started = performance.now();
    const outputs = await this.model.run(this.buf, windows);
    this.stats.inferenceMs += performance.now() - started;
    this.stats.runs += Math.ceil(windows / MAX_RUN_BATCH);
    this.stats.windows += windows;
    this.jobs.forEach((job, w) => {
      const v = this.finish(job, outputs, w);
      if (v) results[job.rowIndex] = v;
    });
    this.jobs = [];
    return results;
  }

  private stateOf(key: string): KeyState {
    let s = this.keys.get(key);
    if (!s) {
      const fixed = this.entry.normalisation.type === 'fixed' ? this.entry.normalisation : undefined;
      const online = this.online;
      s = {
        rows: 0,
        warm: fixed || online ? null : [],
        warmTs: fixed || online ? null : [],
        mean: Float64Array.from(fixed?.mean ?? new Array<number>(this.f).fill(0)),
        std: Float64Array.from(fixed?.std ?? new Array<number>(this.f).fill(1)),
        ring: new Float32Array(this.w * this.f),
        ringTs: new Float64Array(this.w),
        first: null,
        firstTs: 0,
        ewma: new Ewma(this.entry.score?.ewma_halflife ?? 0),
        calibration: [],
        q: 1,
        alert: { alert: false, streak: 0 },
        alertRows: 0,
      };
      if (online) s.online = { baseline: newBaseline(online.params), onset: { recent: [] }, raw: new Float64Array(this.w), hold: {} };
      this.keys.set(key, s);
    }
    return s;
  }

  /** Takes one row into its key's state and schedules the windows it produces; returns the window count. */
  private accept(row: Row, rowIndex: number, windows: number): number {
    if (row.values.length !== this.f) throw new Error(`model ${this.entry.id}, key ${row.key}: expected ${this.f} values, got ${row.values.length}`);
    this.stats.rows++;
    const s = this.stateOf(row.key);
    if (s.online) return this.acceptOnline(s, row, rowIndex, windows);
    if (s.warm && s.warmTs) {
      s.warm.push([...row.values]);
      s.warmTs.push(row.ts);
      if (s.warm.length < this.warmup!) return windows;
      return this.endWarmup(s, row.key, rowIndex, windows);
    }
    if (this.relearnAfter && s.alertRows > 0 && s.alertRows % this.relearnAfter === 0) this.recentre(s);
    const z = this.normalise(s, row.values);
    if (this.follow) followBaseline(s.mean, s.std, z, s.alert.alert && this.followInAlert ? this.followInAlert : this.follow, this.followClip);
    if (this.followStd && !s.alert.alert) followSpread(s.std, z, this.followStd.rate, this.followStd.clip, this.followStd.minStd);
    this.append(s, z, row.ts);
    if (s.rows < this.w && this.entry.input.pad === 'none') return windows;
    const job: Job = { state: s, key: row.key, kind: 'verdict', ts: row.ts, windowStart: this.windowStart(s), rowIndex };
    if (row.ref !== undefined) job.ref = row.ref;
    return this.schedule(job, windows, (slot) => this.copyWindow(s, slot));
  }

  /**
   * Normalisation "online": the baseline measures the row (before learning from it), and the
   * window of the last W raw values is normalised by that same baseline, so the model sees how
   * the recent readings sit against the series' running normal.
   */
  private acceptOnline(s: KeyState, row: Row, rowIndex: number, windows: number): number {
    const o = s.online!;
    const x = row.values[0]!;
    const obs = observe(o.baseline, this.online!.params, this.online!.events, x, row.ts, this.obs);
    o.raw[s.rows % this.w] = x;
    if (s.rows === 0) s.firstTs = row.ts;
    s.ringTs[s.rows % this.w] = row.ts;
    s.rows++;
    if (s.rows <= this.warmup!) return windows;
    const job: Job = { state: s, key: row.key, kind: 'verdict', ts: row.ts, windowStart: this.windowStart(s), rowIndex, seasonalZ: obs.seasonalZ, outOfRange: obs.outOfRange, stuck: obs.stuck, x, mean: obs.mean, scale: obs.scale };
    if (row.ref !== undefined) job.ref = row.ref;
    const clip = this.entry.clip;
    return this.schedule(job, windows, (slot) => {
      for (let i = 0; i < this.w; i++) {
        const z = (o.raw[(s.rows - this.w + i) % this.w]! - obs.mean) / obs.scale;
        slot[i] = z > clip ? clip : z < -clip ? -clip : z;
      }
    });
  }

  /** Freezes the key's normalisation from its warm-up rows and schedules the calibration windows. */
  private endWarmup(s: KeyState, key: string, rowIndex: number, windows: number): number {
    const warm = s.warm!;
    const warmTs = s.warmTs!;
    const minStd = this.entry.normalisation.type === 'warmup' ? this.entry.normalisation.min_std : 0;
    for (let f = 0; f < this.f; f++) {
      const { mean, std } = columnStats(warm, f);
      s.mean[f] = mean;
      s.std[f] = Math.max(std, minStd);
    }
    const normalised = warm.map((r) => this.normalise(s, r));
    s.warm = null;
    s.warmTs = null;
    const last = normalised.length - 1;
    for (let end = this.w - 1; end <= last; end++) {
      const job: Job = { state: s, key, kind: end === last ? 'calibrated' : 'calibrate', ts: warmTs[end]!, windowStart: warmTs[end - this.w + 1]!, rowIndex };
      windows = this.schedule(job, windows, (slot) => {
        for (let i = 0; i < this.w; i++) slot.set(normalised[end - this.w + 1 + i]!, i * this.f);
      });
    }
    normalised.forEach((r, i) => this.append(s, r, warmTs[i]!));
    return windows;
  }

  private schedule(job: Job, windows: number, fill: (slot: Float32Array) => void): number {
    const per = this.w * this.f;
    if (this.buf.length < (windows + 1) * per) {
      const grown = new Float32Array(Math.max(per * 64, this.buf.length * 2, (windows + 1) * per));
      grown.set(this.buf.subarray(0, windows * per));
      this.buf = grown;
    }
    fill(this.buf.subarray(windows * per, (windows + 1) * per));
    this.jobs.push(job);
    return windows + 1;
  }

  /**
   * A key in alert for `relearn_after` rows has settled on a new level: move its baseline to the
   * mean of its last W rows, so the alert clears and re-arms instead of lasting for ever.
   */
  private recentre(s: KeyState): void {
    const n = Math.min(s.rows, this.w);
    for (let f = 0; f < this.f; f++) {
      let z = 0;
      for (let i = 0; i < n; i++) z += s.ring[i * this.f + f]!;
      s.mean[f]! += s.std[f]! * (z / n);
    }
  }

  private normalise(s: KeyState, values: readonly number[]): Float32Array {
    const clip = this.entry.clip;
    const out = new Float32Array(this.f);
    for (let f = 0; f < this.f; f++) {
      const z = (values[f]! - s.mean[f]!) / s.std[f]!;
      out[f] = z > clip ? clip : z < -clip ? -clip : z;
    }
    return out;
  }

  private append(s: KeyState, normalised: Float32Array, ts: number): void {
    if (s.rows === 0) {
      s.first = normalised;
      s.firstTs = ts;
    }
    const slot = s.rows % this.w;
    s.ring.set(normalised, slot * this.f);
    s.ringTs[slot] = ts;
    s.rows++;
  }

  /** The window ending at the key's newest row; rows before the first are the first row (pad "edge"). */
  private copyWindow(s: KeyState, slot: Float32Array): void {
    const f = this.f;
    // Element loops, not subarray views: this runs once per reading and must not allocate.
    for (let i = 0; i < this.w; i++) {
      const abs = s.rows - this.w + i;
      const out = i * f;
      if (abs < 0) {
        for (let k = 0; k < f; k++) slot[out + k] = s.first![k]!;
      } else {
        const from = (abs % this.w) * f;
        for (let k = 0; k < f; k++) slot[out + k] = s.ring[from + k]!;
      }
    }
  }

  private windowStart(s: KeyState): number {
    const abs = s.rows - this.w;
    return abs < 0 ? s.firstTs : s.ringTs[abs % this.w]!;
  }

  private finish(job: Job, outputs: ModelOutputs, w: number): Verdict | null {
    const values: Record<string, number> = {};
    let finite = true;
    for (const o of this.entry.outputs) {
      const v = outputs[o.name]![w]!;
      if (!Number.isFinite(v)) finite = false;
      values[o.name] = v;
    }
    const s = job.state;
    const score = this.entry.score;
    if (job.kind !== 'verdict') {
      if (score && finite) s.calibration.push(s.ewma.push(values[score.output]!));
      if (job.kind === 'calibrated' && score?.calibration.type === 'warmup-quantile') {
        const errors = s.calibration.length > 0 ? s.calibration : [0];
        s.q = Math.max(quantile(errors, score.calibration.quantile) * score.calibration.factor, 1e-12);
        s.calibration = [];
      }
      if (!finite) this.stats.nonFinite++;
      return null;
    }
    if (!finite) {
      this.stats.nonFinite++;
      return null;
    }
    let scoreValue: number | undefined;
    let surprise: number | undefined;
    if (score && s.online && job.seasonalZ !== undefined) {
      const r = onsetScore(this.online!.onset, s.online.onset, values[score.output]!, job as Required<Pick<Job, 'seasonalZ' | 'outOfRange' | 'stuck'>> & Pick<Job, 'x'>, this.onset);
      scoreValue = r.score;
      surprise = r.surprise;
    }
    else if (score) scoreValue = scoreOf(s.ewma.push(values[score.output]!), s.q);
    const rule = this.rule;
    const pick = (name: string) => (name === 'score' ? scoreValue! : name === 'surprise' ? surprise! : values[name]!);
    let value = pick(rule.output);
    const hold = this.online?.hold;
    let clearValue = rule.clear_output === undefined ? value : rule.clear_output === 'departure' ? 0 : pick(rule.clear_output);
    const row = hold && s.online && job.x !== undefined ? { x: job.x, mean: job.mean!, scale: job.scale! } : undefined;
    // onset-alert.ts: raised at the onset, held while the present stays away from the pre-onset level.
    if (row && rule.clear_output === 'departure') clearValue = holdClearValue(hold!, s.online!.hold, row, s.alert, s.alertRows, this.online!.onset.decades);
    if (row && shiftRaise(hold!, s.online!.hold, row, s.alert)) value = Math.max(value, rule.on);
    let { alert, changed } = stepAlert(rule, s.alert, value, clearValue);
    if (row) {
      changed = holdAfter(hold!, s.online!.hold, row, s.alert, s.alertRows, changed);
      alert = s.alert.alert;
    }
    s.alertRows = alert ? s.alertRows + 1 : 0;
    const v: Verdict = {
      key: job.key,
      ts: job.ts,
      windowStart: job.windowStart,
      modelId: this.entry.id,
      modelSha256: this.model.sha256,
      outputs: values,
      value,
      threshold: rule.on,
      alert,
      changed,
    };
    if (scoreValue !== undefined) v.score = scoreValue;
    if (job.ref !== undefined) v.readingId = job.ref;
    return v;
  }

  async close(): Promise<void> {
    await this.model.close();
  }
}

import type { StoredVerdict } from '../identity/verdict-format.js';
import type { InferenceConfig } from '../inference/config.js';
import { loadBindings } from '../inference/load-bindings.js';
import type { Verdict } from '../inference/model-runner.js';
import { parseSavedState } from '../inference/key-state.js';
import { Binding, Router } from '../inference/router.js';
import { GapFiller, type FilledRows } from '../inference/gap-fill.js';
import type { Logger } from '../log.js';
import { RepeatedLog } from '../util/repeated-log.js';
import { InformativeVerdicts } from './informative-verdicts.js';
import type { Db } from '../store/database.js';
import type { ReadingStore } from '../store/reading-store.js';
import { InferenceStateStore } from '../store/inference-state-store.js';
import { VerdictStore } from '../store/verdict-store.js';
import { EventStore } from '../store/event-store.js';
import { relearnMatches, RelearnStore } from '../store/relearn-store.js';
import type { StoredReading } from '../types.js';
import { READING_FLAGS, VERDICT_FLAGS } from '../identity/batch-v3.js';

/** Where alert changes go besides the store: the alert publisher, Home Assistant (any number, fanned out by the run). */
export interface AlertSink {
  publish(v: StoredVerdict): void;
}

/** Reading flags that keep a reading from teaching the models: quarantine and maintenance (guard stage). */
const GUARDED = READING_FLAGS.quarantined | READING_FLAGS.maintenance;
const isGuarded = (r: StoredReading) => r.flags !== undefined && (r.flags & GUARDED) !== 0;

/**
 * The verdicts of the real rows, in their order: a filled row's verdict is not kept (no reading
 * behind it), but an alert change it made moves to the next real verdict of its key, and the
 * verdict of a window that reaches over a filled row says `filled` (VERDICT_FLAGS, §12.3).
 */
function keepReal(results: (Verdict | null)[], filled: FilledRows): (Verdict | null)[] {
  const out: (Verdict | null)[] = [];
  const changedBy = new Set<string>();
  results.forEach((v, i) => {
    if (filled.synthetic[i]) {
      if (v?.changed) changedBy.add(v.key);
      return;
    }
    if (v && changedBy.delete(v.key)) v.changed = true;
    if (v && filled.windowFilled[i]) v.flags = (v.flags ?? 0) | VERDICT_FLAGS.filled;
    out.push(v);
  });
  return out;
}

/** What the score stage reports to whoever observes it (health/metrics.ts implements it); it never calls health itself. */
export interface ScoreObserver {
  inferenceRun(modelId: string, seconds: number, windows: number): void;
  alertChanged(modelId: string, key: string, raised: boolean): void;
}

/** Readings handed to the models per pass: enough to batch windows well, few enough to keep latency low. */
const PASS_READINGS = 16_384;
/** How often pending `models relearn` requests are looked for while running. */
const RELEARN_POLL_MS = 1000;
/** Sensor ids kept to name in the "binding matched no sensor" warning. */
const SEEN_SENSORS_SHOWN = 10;

export function unmatchedText(id: string, u: UnmatchedBinding): string {
  return `inference binding ${id} has matched no sensor after ${u.after} readings (filters: ${u.filters.join(', ')}); sensors that arrived: ${u.seen.join(', ')}; check inference.bindings.${id}`;
}

/** A binding that has matched no sensor after `after` readings, with sensor ids that did arrive. */
export interface UnmatchedBinding {
  after: number;
  filters: string[];
  seen: string[];
}

export interface InferenceStats {
  queued: number;
  scored: number;
  verdicts: number;
  alertsRaised: number;
  alertsCleared: number;
  skippedQueueFull: number;
  /** Verdicts not stored under inference.verdicts informative: no alert, no change, no flag, no keyframe due. */
  verdictsElided: number;
  unscored: number;
  errors: number;
  /** Readings not scored because they were quarantined or in maintenance. */
  guarded?: number;
  inferenceMs: number;
  windows: number;
  /** alert: the rule in force (raise at on, clear past off, in direction), after any inference.bindings.ID.alert override. */
  bindings: Record<string, { model: string; series: number; alert?: { direction: string; on: number; off: number } }>;
  disabled: Record<string, { model: string; reason: string }>;
  unmatched?: Record<string, UnmatchedBinding>;
  relearned?: number;
}

/**
 * Scores committed readings with the configured models, off the acknowledgement path: sources
 * acknowledge once readings are committed, and this stage catches up behind them. Verdicts are
 * committed to the store (and so go into the next signed batch), alert changes are published.
 */
export class InferenceStage {
  private queue: StoredReading[][] = [];
  private queuedCount = 0;
  private running: Promise<void> | undefined;
  private stopped = false;
  private stateShareBytes = Infinity;
  /** Series left out of the last save (past the share): logged when it changes, not every save. */
  private stateSkipped = 0;
  private stopDeadline: number | undefined;
  /** The directory of the model set this stage runs (manifest.json and its files). */
  modelsDir = '';
  /** Bindings whose model could not be trusted or loaded, with the reason. */
  disabled: Record<string, { model: string; reason: string }> = {};
  private saveTimer: NodeJS.Timeout | undefined;
  private relearnTimer: NodeJS.Timeout | undefined;
  private readonly router: Router;
  private readonly verdictStore: VerdictStore;
  private readonly relearnStore: RelearnStore;
  private readonly events: EventStore;
  private readingsSeen = 0;
  private readonly seenSensors = new Set<string>();
  private readonly unmatched: Record<string, UnmatchedBinding> = {};
  private readonly fillers = new Map<Binding, GapFiller>();
  private relearned = 0;
  readonly stats: Omit<InferenceStats, 'queued' | 'bindings' | 'inferenceMs' | 'windows' | 'disabled'> = {
    scored: 0,
    verdicts: 0,
    alertsRaised: 0,
    alertsCleared: 0,
    skippedQueueFull: 0,
    unscored: 0,
    errors: 0,
    verdictsElided: 0,
  };
  private readonly informative: InformativeVerdicts;

  private constructor(
    private readonly cfg: InferenceConfig,
    private readonly bindings: Binding[],
    private readonly db: Db,
    private readonly counters: ReadingStore,
    bootCounter: number,
    private readonly onVerdicts: (n: number) => void,
    private readonly publisher: AlertSink | undefined,
    private readonly metrics: ScoreObserver | undefined,
    private readonly log: Logger,
  ) {
    this.router = new Router(bindings);
    this.informative = new InformativeVerdicts(cfg.verdict_keyframe_s * 1000);
    this.verdictStore = new VerdictStore(db, bootCounter);
    this.relearnStore = new RelearnStore(db);
    this.events = new EventStore(db, bootCounter);
    // A full disk fails every pass: once a minute with a count, no stack trace each (issue 20).
    this.verdictsFailed = new RepeatedLog(log, 'error', 'could not commit verdicts; they are lost, the readings are stored');
    this.stateFailed = new RepeatedLog(log, 'warn', 'could not save the inference state; a restart would warm up again');
  }

  private readonly verdictsFailed: RepeatedLog;
  private readonly stateFailed: RepeatedLog;

  /** Loads and checks every bound model (sha256, graph, binding shape) and restores saved series state. */
  static async create(
    cfg: InferenceConfig,
    deps: {
      modelsDir: string;
      publisherKey?: Uint8Array;
      configPath: string;
      db: Db;
      counters: ReadingStore;
      bootCounter: number;
      onVerdicts: (n: number) => void;
      publisher?: AlertSink;
      metrics?: ScoreObserver;
      log: Logger;
      /** A reload builds the new stage while the old one still runs: it resumes saved state later (resumeSavedState). */
      deferRestore?: boolean;
      /** The saved series state's share of the store budget (store/budget-shares.ts inferenceStateShare); none without a budget. */
      stateShareBytes?: number;
    },
  ): Promise<InferenceStage> {
    const { bindings, disabled } = await loadBindings(cfg, deps);
    const stage = new InferenceStage(cfg, bindings, deps.db, deps.counters, deps.bootCounter, deps.onVerdicts, deps.publisher, deps.metrics, deps.log);
    stage.stateShareBytes = deps.stateShareBytes ?? Infinity;
    stage.disabled = disabled;
    stage.modelsDir = deps.modelsDir;
    if (!deps.deferRestore) stage.resumeSavedState();
    return stage;
  }

  /** Restores each series' saved state (warm-up, calibration, window) and applies pending relearn requests. */
  resumeSavedState(): void {
    this.restoreState();
    this.applyRelearn();
  }

  start(): void {
    this.saveTimer = setInterval(() => this.saveState(), this.cfg.state_save_interval_s * 1000);
    this.saveTimer.unref();
    this.relearnTimer = setInterval(() => this.applyRelearn(), RELEARN_POLL_MS);
    this.relearnTimer.unref();
    this.log.info(
      { bindings: this.bindings.map((b) => ({ id: b.id, model: b.runner.entry.id, sha256: b.runner.entry.sha256.slice(0, 16) })), disabled: Object.keys(this.disabled) },
      'inference running',
    );
  }

  /** Takes readings just committed; never blocks the caller. */
  enqueue(committed: StoredReading[]): void {
    if (this.stopped) return;
    const readings = committed;
    this.countGuarded(readings);
    if (readings.length === 0) return;
    if (this.queuedCount + readings.length > this.cfg.max_queue) {
      this.stats.skippedQueueFull += readings.length;
      this.counters.addCounter('inference_skipped', 'queue-full', readings.length);
      return;
    }
    this.queue.push(readings);
    this.queuedCount += readings.length;
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  /**
   * Quarantined readings and readings of a maintenance window (flags of the guard stage, §12.3)
   * never feed a model: no baseline, no calibration learns from them and no alert is raised on
   * them (counted: inference_skipped, label guarded). They are scored without learning
   * (ModelRunner.scoreUnlearned), so their verdicts say `unlearned`, and `suppressed` where
   * the alert would have been raised. They are stored and delivered as any other.
   */
  private countGuarded(readings: StoredReading[]): void {
    let guarded = 0;
    for (const r of readings) if (isGuarded(r)) guarded++;
    if (guarded === 0) return;
    this.stats.guarded = (this.stats.guarded ?? 0) + guarded;
    try {
      this.counters.addCounter('inference_skipped', 'guarded', guarded);
    } catch (err) {
      this.verdictsFailed.report(err);
    }
  }

  private fillerOf(b: Binding): GapFiller {
    let f = this.fillers.get(b);
    if (!f) this.fillers.set(b, (f = new GapFiller(b.runner.window)));
    return f;
  }

  private async drain(): Promise<void> {
    while (this.queue.length > 0 && !(this.stopDeadline !== undefined && Date.now() > this.stopDeadline)) {
      const batch: StoredReading[] = [];
      while (this.queue.length > 0 && batch.length < PASS_READINGS) batch.push(...this.queue.shift()!);
      this.queuedCount -= batch.length;
      await this.pass(batch);
    }
  }

  private async pass(all: StoredReading[]): Promise<void> {
    const started = performance.now();
    const guarded = all.filter(isGuarded);
    const readings = guarded.length === 0 ? all : all.filter((r) => !isGuarded(r));
    const { rows, unscored } = this.router.route(readings);
    this.watchUnmatched(all);
    const fresh: Verdict[] = [];
    for (const [binding, n] of unscored) {
      this.stats.unscored += n;
      this.counters.addCounter('inference_unscored', binding.id, n);
    }
    for (const [binding, list] of rows) {
      let results: (Verdict | null)[];
      const windowsBefore = binding.runner.stats.windows;
      const started = performance.now();
      const filled = this.fillerOf(binding).fill(list);
      try {
        results = keepReal(await binding.runner.push(filled.rows), filled);
        this.metrics?.inferenceRun(binding.runner.entry.id, (performance.now() - started) / 1000, binding.runner.stats.windows - windowsBefore);
      } catch (err) {
        // A model failing on one pass must not stop the agent: those readings stay unscored, counted.
        this.stats.errors++;
        try {
          this.counters.addCounter('inference_errors', binding.id, list.length);
        } catch (countErr) {
          this.verdictsFailed.report(countErr);
        }
        this.log.error({ err, binding: binding.id, model: binding.runner.entry.id, rows: list.length }, 'inference failed for a pass; readings stored unscored');
        continue;
      }
      this.stats.scored += list.length;
      for (const v of results) if (v) fresh.push(v);
    }
    // After the pass's other rows: a guarded reading is measured against its series' state as the pass left it.
    for (const [binding, list] of this.router.unlearnedRows(guarded)) {
      try {
        for (const v of await binding.runner.scoreUnlearned(list)) if (v) fresh.push(v);
      } catch (err) {
        this.stats.errors++;
        this.log.error({ err, binding: binding.id, model: binding.runner.entry.id, rows: list.length }, 'inference failed on quarantined or maintenance readings; they stay unscored');
      }
    }
    const kept = this.cfg.verdicts === 'all' ? fresh : fresh.filter((v) => this.informative.keep(v));
    this.stats.verdictsElided += fresh.length - kept.length;
    this.log.debug({ readings: readings.length, verdicts: kept.length, elided: fresh.length - kept.length, ms: Math.round(performance.now() - started), queued: this.queuedCount }, 'inference pass');
    if (kept.length === 0) return;
    this.commitVerdicts(kept);
  }

  private commitVerdicts(fresh: Verdict[]): void {
    let ids: number[];
    try {
      ids = this.verdictStore.commit(fresh);
    } catch (err) {
      this.stats.errors++;
      this.verdictsFailed.report(err, { verdicts: fresh.length });
      return;
    }
    this.stats.verdicts += fresh.length;
    this.onVerdicts(fresh.length);
    fresh.forEach((v, i) => {
      if (!v.changed) return;
      if (v.alert) this.stats.alertsRaised++;
      else this.stats.alertsCleared++;
      this.log.warn({ series: v.key, model: v.modelId, value: v.value, threshold: v.threshold, verdict: ids[i] }, v.alert ? 'alert raised' : 'alert cleared');
      this.publisher?.publish({ ...v, id: ids[i]! });
      this.metrics?.alertChanged(v.modelId, v.key, v.alert);
    });
  }

  snapshot(): InferenceStats {
    let inferenceMs = 0;
    let windows = 0;
    const bindings: InferenceStats['bindings'] = {};
    for (const b of this.bindings) {
      inferenceMs += b.runner.stats.inferenceMs;
      windows += b.runner.stats.windows;
      const { direction, on, off } = b.runner.rule;
      bindings[b.id] = { model: b.runner.entry.id, series: b.runner.keyCount, alert: { direction, on, off } };
    }
    return { ...this.stats, queued: this.queuedCount, inferenceMs, windows, bindings, disabled: this.disabled, unmatched: { ...this.unmatched }, relearned: this.relearned };
  }

  /** Operator-facing warnings, one line per binding that has matched no sensor. */
  warnings(): string[] {
    return Object.entries(this.unmatched).map(([id, u]) => unmatchedText(id, u));
  }

  /**
   * Warns once per binding that has matched no sensor after `unmatched_warn_after` readings (a
   * filter with a typo scores nothing and would otherwise say nothing), naming sensors that did
   * arrive; the warning goes away once the binding matches.
   */
  private watchUnmatched(readings: readonly StoredReading[]): void {
    const limit = this.cfg.unmatched_warn_after;
    const waiting = this.bindings.filter((b) => !b.matchedAny);
    for (const b of this.bindings) if (b.matchedAny && this.unmatched[b.id]) delete this.unmatched[b.id];
    if (waiting.length === 0 || waiting.every((b) => this.unmatched[b.id])) return;
    this.readingsSeen += readings.length;
    for (const r of readings) {
      if (this.seenSensors.size >= SEEN_SENSORS_SHOWN) break;
      this.seenSensors.add(r.sensor);
    }
    if (this.readingsSeen < limit) return;
    for (const b of waiting) {
      if (this.unmatched[b.id]) continue;
      const filters = b.cfg.sensors ?? Object.values(b.cfg.channels ?? {});
      const seen = [...this.seenSensors];
      this.unmatched[b.id] = { after: this.readingsSeen, filters, seen };
      this.log.warn({ binding: b.id, model: b.runner.entry.id, filters, seen }, unmatchedText(b.id, this.unmatched[b.id]!));
    }
  }

  /**
   * Applies pending `models relearn` requests: each matching series forgets its state (in memory
   * and saved) and starts a fresh baseline with its next reading; each is recorded as an event
   * `model.relearn` that goes upstream in the next batch.
   */
  private applyRelearn(): void {
    try {
      for (const req of this.relearnStore.pending()) {
        let matched = 0;
        this.relearnStore.atomically(() => {
          for (const b of this.bindings) {
            for (const key of b.runner.keyNames()) {
              if (!relearnMatches(req, key)) continue;
              b.runner.resetKey(key);
              this.relearnStore.forgetState(b.id, key);
              this.events.record({ kind: 'model.relearn', key, detail: { binding: b.id, model: b.runner.entry.id, request: req.id, selector: req.selector } });
              matched++;
            }
          }
          this.relearnStore.markDone(req.id, matched);
        });
        this.relearned += matched;
        const what = req.selector === 'all' ? 'all series' : `${req.selector} ${req.target}`;
        if (matched > 0) this.log.info({ request: req.id, series: matched }, `relearn: ${what}: ${matched} series start a fresh baseline`);
        else this.log.warn({ request: req.id }, `relearn: ${what} matches no series any binding has seen; nothing to relearn`);
      }
    } catch (err) {
      this.log.warn({ err }, 'could not apply relearn requests; retrying');
    }
  }

  /**
   * Scores what is queued for up to `timeoutMs` (what is left stays stored, unscored), saves every
   * series' state, releases the models. The pass in flight always finishes: a session is never
   * released under a running `session.run`.
   */
  async stop(timeoutMs = 2000): Promise<void> {
    this.stopped = true;
    this.stopDeadline = Date.now() + timeoutMs;
    if (this.saveTimer) clearInterval(this.saveTimer);
    if (this.relearnTimer) clearInterval(this.relearnTimer);
    await this.running;
    if (this.queuedCount > 0) this.log.warn({ readings: this.queuedCount }, 'stopping with readings not yet scored; they are stored and delivered unscored');
    this.saveState();
    await Promise.allSettled(this.bindings.map((b) => b.runner.close()));
  }

  private saveState(): void {
    try {
      const rows = [];
      for (const b of this.bindings) {
        const modelSha256 = Buffer.from(b.runner.entry.sha256, 'hex');
        for (const [key, state] of b.runner.exportState()) rows.push({ binding: b.id, key, modelSha256, state: JSON.stringify(state) });
      }
      const r = new InferenceStateStore(this.db).save(rows, Date.now(), this.stateShareBytes);
      if (r.skipped !== this.stateSkipped) {
        if (r.skipped > 0) {
          this.log.warn(
            { saved: r.saved, skipped: r.skipped, share_bytes: this.stateShareBytes },
            'the inference state of some series does not fit its share of the store budget: they warm up again after a restart (raise store.max_bytes, or lower inference max_series)',
          );
        }
        this.stateSkipped = r.skipped;
      }
      this.stateFailed.recovered();
    } catch (err) {
      this.stateFailed.report(err);
    }
  }

  private restoreState(): void {
    const rows = new InferenceStateStore(this.db).load();
    let restored = 0;
    for (const row of rows) {
      const b = this.bindings.find((x) => x.id === row.binding);
      // Another model (or version) starts afresh: its windows and calibration do not carry over.
      if (!b || row.model_sha256.toString('hex') !== b.runner.entry.sha256) continue;
      try {
        b.runner.importState(row.key, parseSavedState(row.state));
        if (!b.multivariate) b.series.add(row.key);
        restored++;
      } catch (err) {
        this.log.warn({ err, binding: row.binding, series: row.key }, 'saved inference state unusable; this series warms up again');
      }
    }
    if (restored > 0) this.log.info({ series: restored }, 'inference state restored');
  }
}

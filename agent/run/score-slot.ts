import type { LoadedConfig } from '../config/load.js';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import type { AlertPublisher } from '../inference/alert-publisher.js';
import type { InferenceConfig } from '../inference/config.js';
import type { Logger } from '../log.js';
import type { AlertSink, InferenceStage, InferenceStats, ScoreObserver } from '../pipeline/inference-stage.js';
import type { Db } from '../store/database.js';
import type { ReadingStore } from '../store/reading-store.js';
import { inferenceStateShare } from '../store/budget-shares.js';
import type { StoredReading } from '../types.js';
import type { LastValues } from '../integrations/last-values.js';
import { resolveSideBroker } from './side-broker.js';

export interface ScoreSlotDeps {
  db: Db;
  counters: ReadingStore;
  bootCounter: number;
  deviceId: string;
  onVerdicts(n: number): void;
  /** Alert changes also go here (Home Assistant), besides the alert publisher. */
  side: AlertSink;
  lastValues: LastValues;
  metrics: ScoreObserver;
  log: Logger;
  /** The model set to load: the one a signed update applied, else inference.models_dir, else the shipped one. */
  modelsDir(loaded: LoadedConfig): Promise<string>;
}

/** How long the old stage may score what it holds when a reload replaces it. */
const SWAP_DRAIN_MS = 10_000;

/**
 * The score stage as the run holds it: the current InferenceStage (or none) and the alert
 * publisher, replaceable while running. A reload builds the new stage beside the old one (so a
 * binding naming an unknown model refuses the reload and changes nothing), then swaps: readings
 * committed during the swap are held (up to inference.max_queue) and scored by the new stage, and
 * each series keeps its saved state when its binding keeps its model.
 */
export class ScoreSlot {
  private stage: InferenceStage | undefined;
  private alertPublisher: AlertPublisher | undefined;
  private held: StoredReading[][] | undefined;
  private heldCount = 0;
  private holdLimit = 0;
  /** Why readings are held (the inference_skipped counter's label when the hold is full). */
  private holdReason: 'start' | 'reload' = 'reload';
  /** The models loading at start (see start()), settled before the slot stops. */
  private loading: Promise<void> | undefined;

  constructor(private readonly deps: ScoreSlotDeps) {}

  get current(): InferenceStage | undefined {
    return this.stage;
  }

  /** Called with every commit; never blocks. */
  enqueue(readings: StoredReading[]): void {
    if (!this.held) return this.stage?.enqueue(readings);
    // Bounded like the stage's own queue: beyond it readings stay stored, unscored, counted.
    if (this.heldCount + readings.length > this.holdLimit) {
      this.deps.counters.addCounter('inference_skipped', this.holdReason, readings.length);
      return;
    }
    this.held.push(readings);
    this.heldCount += readings.length;
  }

  /**
   * Starts loading and checking the bound models, then scores every committed reading off the
   * acknowledgement path. Returns at once: the sources start while the models load (onnxruntime and
   * the sessions were ~65-150 ms of every cold start before the first PUBACK), and readings
   * committed meanwhile are held (up to inference.max_queue) and scored, in order, once the stage
   * is built. The returned promise settles when it is: the run's start awaits it, so a bad binding
   * still fails the start with its reason (the readings acknowledged by then are stored).
   */
  start(loaded: LoadedConfig): Promise<void> {
    const cfg = loaded.config.inference;
    if (!cfg || Object.keys(cfg.bindings).length === 0) return Promise.resolve();
    this.held = [];
    this.heldCount = 0;
    this.holdLimit = cfg.max_queue;
    this.holdReason = 'start';
    const loading = (async () => {
      try {
        if (cfg.alerts) this.alertPublisher = await this.createAlertPublisher(loaded, cfg.alerts);
        this.stage = await this.build(loaded, cfg, false);
        this.stage.start();
      } finally {
        this.releaseHeld();
      }
      await this.alertPublisher?.start();
    })();
    this.loading = loading;
    // Awaited by the run's start (and by stop); this only keeps a failure from being unhandled meanwhile.
    loading.catch(() => undefined);
    return loading;
  }

  /**
   * Replaces the stage with one built from `loaded` (inference.alerts is kept: it needs a restart).
   * Throws, with nothing changed, when the new bindings cannot be built.
   */
  async swap(loaded: LoadedConfig): Promise<void> {
    const cfg = loaded.config.inference;
    const next = cfg && Object.keys(cfg.bindings).length > 0 ? await this.build(loaded, cfg, true) : undefined;
    const old = this.stage;
    // With no binding left there is nothing to hold readings for.
    this.held = next ? [] : undefined;
    this.heldCount = 0;
    this.holdLimit = next ? cfg!.max_queue : 0;
    this.holdReason = 'reload';
    try {
      await old?.stop(SWAP_DRAIN_MS);
    } finally {
      // The old stage saved every series' state as it stopped: the new one resumes from it.
      next?.resumeSavedState();
      this.stage = next;
      next?.start();
      this.releaseHeld();
    }
  }

  /** Hands the readings held during a start or a swap to the stage now in place (none: they stay stored, unscored). */
  private releaseHeld(): void {
    const held = this.held ?? [];
    this.held = undefined;
    this.heldCount = 0;
    for (const r of held) this.stage?.enqueue(r);
  }

  async stop(): Promise<void> {
    // A start that is still loading models finishes (or fails, as the start reports) before the stage stops.
    await this.loading?.catch(() => undefined);
    await this.stage?.stop();
    await this.alertPublisher?.stop();
  }

  snapshot(): InferenceStats | undefined {
    return this.stage?.snapshot();
  }

  warnings(): string[] {
    return this.stage?.warnings() ?? [];
  }

  disabled(): Record<string, { model: string; reason: string }> {
    return this.stage?.disabled ?? {};
  }

  private async build(loaded: LoadedConfig, cfg: InferenceConfig, deferRestore: boolean): Promise<InferenceStage> {
    const d = this.deps;
    // Loaded here, not with the run: the inference code is not on the way to the first acknowledgement.
    const { InferenceStage } = await import('../pipeline/inference-stage.js');
    return InferenceStage.create(cfg, {
      modelsDir: await d.modelsDir(loaded),
      ...(cfg.publisher_key ? { publisherKey: publicKeyFromDeviceId(cfg.publisher_key) } : {}),
      configPath: loaded.path,
      db: d.db,
      counters: d.counters,
      bootCounter: d.bootCounter,
      onVerdicts: d.onVerdicts,
      publisher: { publish: (v) => (this.alertPublisher?.publish(v), d.side.publish(v)) },
      metrics: d.metrics,
      log: d.log,
      deferRestore,
      stateShareBytes: inferenceStateShare(loaded.config.store.max_bytes),
    });
  }

  private async createAlertPublisher(loaded: LoadedConfig, alerts: NonNullable<InferenceConfig['alerts']>): Promise<AlertPublisher> {
    const d = this.deps;
    const log = d.log.child({ component: 'alerts' });
    const { url, connect, clientId } = resolveSideBroker(loaded, 'inference.alerts', alerts, 'alerts', `edge-agent-alerts-${d.deviceId.slice(-12)}`, log);
    const { AlertPublisher } = await import('../inference/alert-publisher.js');
    return new AlertPublisher(
      { url, clientId, connect, topicPrefix: alerts.topic_prefix, retain: alerts.retain, deviceId: d.deviceId, lastReading: (series) => d.lastValues.get(series) },
      log,
    );
  }
}

import type { LoadedConfig } from '../config/load.js';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import type { AlertPublisher } from '../inference/alert-publisher.js';
import type { InferenceConfig } from '../inference/config.js';
import type { Logger } from '../log.js';
import { InferenceStage, type AlertSink, type InferenceStats, type ScoreObserver } from '../pipeline/inference-stage.js';
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

  constructor(private readonly deps: ScoreSlotDeps) {}

  get current(): InferenceStage | undefined {
    return this.stage;
  }

  /** Called with every commit; never blocks. */
  enqueue(readings: StoredReading[]): void {
    if (!this.held) return this.stage?.enqueue(readings);
    // Bounded like the stage's own queue: beyond it readings stay stored, unscored, counted.
    if (this.heldCount + readings.length > this.holdLimit) {
      this.deps.counters.addCounter('inference_skipped', 'reload', readings.length);
      return;
    }
    this.held.push(readings);
    this.heldCount += readings.length;
  }

  /** Loads and checks the bound models, then scores every committed reading off the acknowledgement path. */
  async start(loaded: LoadedConfig): Promise<void> {
    const cfg = loaded.config.inference;
    if (!cfg || Object.keys(cfg.bindings).length === 0) return;
    if (cfg.alerts) this.alertPublisher = await this.createAlertPublisher(loaded, cfg.alerts);
    this.stage = await this.build(loaded, cfg, false);
    this.stage.start();
    await this.alertPublisher?.start();
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
    try {
      await old?.stop(SWAP_DRAIN_MS);
    } finally {
      // The old stage saved every series' state as it stopped: the new one resumes from it.
      next?.resumeSavedState();
      this.stage = next;
      next?.start();
      const held = this.held ?? [];
      this.held = undefined;
      this.heldCount = 0;
      for (const r of held) next?.enqueue(r);
    }
  }

  async stop(): Promise<void> {
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

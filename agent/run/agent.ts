import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClockStatus, type ClockReading } from '../clock/clock-status.js';
import { probeClock, probeClockAsync } from '../clock/clock-probe.js';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import type { AgentConfig } from '../config/schema.js';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import { recipientBoxKey } from '../identity/seal.js';
import { readKeyFile, type Identity } from '../identity/keys.js';
import type { Logger } from '../log.js';
import { BatchStore } from '../store/batch-store.js';
import type { Db } from '../store/database.js';
import { DiskReserve, START_SLICE_BYTES } from '../store/disk-reserve.js';
import { openStoreForRun } from '../store/open-for-run.js';
import { RepeatedLog } from '../util/repeated-log.js';
import { acquireDataDirLock } from '../store/lock.js';
import { StoreBudget } from '../store/budget.js';
import { StoreUpkeep } from './store-upkeep.js';
import { commitGroupLimit, pendingShareBytes } from '../store/budget-shares.js';
import { guardRowsFor, RedeliveryGuardPruner } from '../store/redelivery-guard.js';
import { EventStore } from '../store/event-store.js';
import { HeldReadings } from '../store/held-readings.js';
import { NetworkUploads } from '../adaptive/network-uploads.js';
import { StoreWriteMeter } from '../store/write-meter.js';
import { readCursors, ReadingStore } from '../store/reading-store.js';
import { loadSourceFactories, type SourceFactory } from '../sources/registry.js';
import type { Source, SourceHealth } from '../sources/source.js';
import { loadUplinkFactory, type UplinkFactory } from '../uplink/registry.js';
import type { Uplink } from '../uplink/uplink.js';
import { AgentError, errorMessage } from '../errors.js';
import { AgentState } from '../health/agent-state.js';
import { Observability } from '../health/observability.js';
import { IngestStage } from '../ingest/ingest-stage.js';
import { buildGuard } from '../guard/build.js';
import type { GuardStage } from '../guard/guard-stage.js';
import { Batcher, type BatcherOptions } from '../pipeline/batcher.js';
import { Heartbeat } from '../pipeline/heartbeat.js';
import { resolveSideBroker } from './side-broker.js';
import { LastValues } from '../integrations/last-values.js';
import type { HomeAssistant } from '../integrations/home-assistant.js';
import { Forwarder } from '../pipeline/forwarder.js';
import { GroupCommitWriter } from '../pipeline/group-commit.js';
import type { InferenceStats } from '../pipeline/inference-stage.js';
import { ScoreSlot } from './score-slot.js';
import { classifyChanges, ReloadRecord, type LastReload, type ReloadResult } from './config-reload.js';
import { checkStageOrder, startStages, stopStages, type RunStage } from './stage.js';
import { LossReporting } from './loss-reporting.js';
import type { AdaptiveReporting } from '../adaptive/adaptive-reporting.js';
import { readUpdateState, type UpdateState } from '../store/update-store.js';
import type { Updater } from '../update/updater.js';
import { startUpdater } from './update-wiring.js';

const STATUS_SNAPSHOT_MS = 5000;

export interface AgentSnapshot {
  pid: number;
  started_at: number;
  updated_at: number;
  boot: number;
  clock_synced: boolean;
  sources: Record<string, SourceHealth>;
  inference?: InferenceStats;
  guard: { check_failures: Record<string, number> };
  /** Adaptive reporting: each followed sensor's interval, request counts (agent/adaptive/README.md). */
  adaptive?: Record<string, unknown>;
  /** The config in force: its version, keys waiting for a restart, the last reload (SIGHUP or an update). */
  config: { version: string; restart_needed: string[]; last_reload: LastReload | null };
  store: { fileBytes: number; walBytes: number; usedBytes: number; max_bytes: number; written_bytes: number; written_bytes_per_hour: number | null };
  /** Remote updates: running and previous versions, the last outcome (docs/updates.md §6). */
  update?: UpdateState;
}

/** The line `edge-agent run --ready-fd N` writes once the agent is ready (README.md, "CLI"). */
export interface ReadyReport {
  ready: true;
  pid: number;
  device: string;
  boot: number;
  sources: string[];
  /** The health endpoint's address (its real port when configured with port 0), null when not served. */
  http: { host: string; port: number } | null;
}

/** The batcher's limits from batch.* (at start and on reload). */
function batchLimits(config: AgentConfig): Pick<BatcherOptions, 'maxReadings' | 'maxAgeMs' | 'maxPending' | 'maxPendingBytes' | 'format'> {
  return {
    maxReadings: config.batch.max_readings,
    maxAgeMs: config.batch.max_age_ms,
    // Without an uplink, batches are kept for export: nothing drains them, so no cap.
    maxPending: config.uplink ? config.batch.max_pending : Infinity,
    // With a budget, pending batches also stop at their byte share (store/budget-shares.ts).
    ...(config.uplink && config.store.max_bytes > 0 ? { maxPendingBytes: pendingShareBytes({ maxPending: config.batch.max_pending, maxReadings: config.batch.max_readings }) } : {}),
    format: config.batch.format,
  };
}

const fileVersion = (path: string) => createHash('sha256').update(readFileSync(path)).digest('hex').slice(0, 16);

function parseReceiverKey(loaded: LoadedConfig): Uint8Array | undefined {
  return parseUplinkKey(loaded, 'receiver_key');
}

/** uplink.receiver_key or uplink.encrypt_to as key bytes; a config error naming the key otherwise. */
function parseUplinkKey(loaded: LoadedConfig, name: 'receiver_key' | 'encrypt_to'): Uint8Array | undefined {
  const text = loaded.config.uplink?.[name];
  if (!text) return undefined;
  try {
    const key = publicKeyFromDeviceId(text);
    if (name === 'encrypt_to') recipientBoxKey(key);
    return key;
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${loaded.path}: uplink.${name}: ${(err as Error).message}`);
  }
}

/**
 * One running agent, assembled here and nowhere else: the store, then one ordered list of stages
 * (`stages`: sources → ingest → commit → score → batch → uplink, agent/run/stage.ts), each given
 * the interface of the next, with health and metrics observing from the side.
 */
export class Agent {
  readonly identity: Identity;
  readonly bootCounter: number;
  private readonly db: Db;
  private readonly writer: GroupCommitWriter;
  private readonly readingStore: ReadingStore;
  /** The guard stage in front of commit, replaceable by a config reload. */
  private guard: GuardStage;
  /** The score stage, replaceable by a config reload (score-slot.ts). */
  private readonly score: ScoreSlot;
  /** Settles once the score stage's models are loaded and the updater started (the score stage's start). */
  private scoreReady: Promise<void> | undefined;
  private readonly batcher: Batcher;
  private readonly forwarder: Forwarder | undefined;
  private readonly uplink: Uplink | undefined;
  private readonly sources: Source[];
  private readonly clock: ClockStatus;
  private readonly upkeep: StoreUpkeep;
  private readonly writeMeter: StoreWriteMeter;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly releaseLock: () => void;
  private readonly heartbeat: Heartbeat;
  private readonly events: EventStore;
  private readonly losses: LossReporting;
  private readonly snapshotFailed: RepeatedLog;
  /** Side outputs fed from the run: last values for alert messages, Home Assistant discovery. */
  private readonly lastValues = new LastValues();
  private homeAssistant: HomeAssistant | undefined;
  /** Adaptive reporting (agent/adaptive/): fed committed readings and alert changes, reaches devices through the sources. */
  private adaptive: AdaptiveReporting | undefined;
  private networkUploads: NetworkUploads | undefined;
  /** Metrics (pass `observability.metrics` to components), backlog progress, the health endpoint. */
  readonly observability: Observability;
  private readonly state: AgentState;
  /** The run, in the direction of data; started last to first, stopped first to last. */
  private readonly stages: readonly RunStage[];
  /** The config the run was assembled from: keys changed against it that are not live wait for a restart. */
  private readonly startedWith: AgentConfig;
  private readonly reloads = new ReloadRecord();
  private reloading: Promise<unknown> = Promise.resolve();
  /** sha256 prefix of the config file in force (heartbeats, status). */
  private configVersion: string;
  /** `run --log-level` chose the level: a reload does not change it. */
  private readonly logLevelPinned: boolean;
  /** Signed remote updates (agent/update/), when update.publisher_key is set. */
  private updater: Updater | undefined;
  /** The model set an update is switching to (before its state is written). */
  private modelsOverride: string | undefined;
  /** Readings committed since start, for "health returned" after an update. */
  private committed = 0;

  /** Loads the code of the configured source and uplink plugins, then assembles the run. */
  static async create(loaded: LoadedConfig, log: Logger, opts: { clockProbe?: Promise<ClockReading> } = {}): Promise<Agent> {
    const { config } = loaded;
    const plugins = {
      sources: await loadSourceFactories(Object.values(config.sources).map((s) => s.type)),
      ...(config.uplink ? { uplink: await loadUplinkFactory(config.uplink.type) } : {}),
    };
    const agent = new Agent(loaded, log, plugins);
    // Not awaited: a reading needed before the probe answers probes inline, as it always did.
    if (opts.clockProbe) void agent.clock.seed(opts.clockProbe);
    return agent;
  }

  private constructor(
    private loaded: LoadedConfig,
    private readonly log: Logger,
    plugins: { sources: Map<string, SourceFactory>; uplink?: UplinkFactory },
  ) {
    const { config } = loaded;
    this.startedWith = config;
    this.logLevelPinned = log.level !== config.log.level;
    this.snapshotFailed = new RepeatedLog(log, 'warn', 'could not write the status snapshot');
    this.identity = readKeyFile(loaded.resolvePath(config.device.key_file));
    const receiverKey = parseReceiverKey(loaded);
    // Built before the store is opened: a TLS file problem is a config error with nothing to undo. MQTT connects lazily.
    this.uplink = config.uplink
      ? plugins.uplink!(config.uplink, {
          deviceId: this.identity.deviceId,
          ...(receiverKey ? { receiverKey } : {}),
          resolvePath: loaded.resolvePath,
          log: log.child({ component: 'uplink' }),
          ...(config.update ? { onUpdate: (u: string) => this.updater?.offer(u) } : {}),
          ...(receiverKey ? { onUpload: (u: string[]) => this.networkUploads?.offer(u) } : {}),
        })
      : undefined;
    const dbPath = loaded.resolvePath(config.store.path);
    const budgetLog = log.child({ component: 'store-budget' });
    const reserve = new DiskReserve(dbPath, budgetLog);
    // Only once the lock file exists is the ballast ours to shrink (a full disk at start-up).
    this.releaseLock = acquireDataDirLock(loaded.dataDir, () => reserve.release(START_SLICE_BYTES, 'disk full at start-up') > 0);
    try {
      ({ db: this.db, bootCounter: this.bootCounter } = openStoreForRun(dbPath, this.identity.deviceId, loaded.resolvePath(config.device.key_file), reserve, budgetLog));
    } catch (err) {
      this.releaseLock();
      throw err;
    }
    this.events = new EventStore(this.db, this.bootCounter);
    this.readingStore = new ReadingStore(this.db, this.bootCounter);
    // Uploads the network asks for (summary mode's kept readings, wire-format.md §12.15): only with a receiver key to check the requests by.
    if (receiverKey) this.networkUploads = new NetworkUploads(receiverKey, this.identity.publicKey, new HeldReadings(this.db, this.bootCounter), log.child({ component: 'uploads' }));
    this.losses = new LossReporting(this.db, this.events, this.readingStore, log);
    this.clock = new ClockStatus(
      config.clock.synced,
      probeClock,
      { thresholdMs: config.clock.step_threshold_ms, settleMs: config.clock.step_settle_s * 1000, onStep: (step) => this.losses.clockStepped(step, config.clock.step_settle_s) },
      probeClockAsync,
    );

    this.observability = new Observability(this.db, config.http, log);
    this.writer = new GroupCommitWriter(this.readingStore, commitGroupLimit(config.store.max_bytes), config.store.commit_interval_ms);
    this.readingStore.riders.waitForQueuedCommits(() => this.writer.commitQueued);
    this.observability.watchWriter(this.writer);
    this.losses.watchRates(this.writer);
    const batches = new BatchStore(this.db);
    this.batcher = new Batcher(
      batches,
      this.identity,
      {
        ...batchLimits(config),
        bootCounter: this.bootCounter,
        clockSynced: () => this.clock.isSynced(),
        reportDrops: config.uplink !== undefined,
        onStoreFull: () => this.upkeep.writeFoundStoreFull(),
        ...(config.uplink?.encrypt_to ? { sealTo: parseUplinkKey(loaded, 'encrypt_to')! } : {}),
      },
      log.child({ component: 'batcher' }),
    );
    this.writer.onCommittedReadings((readings) => this.batcher.noteCommittedReadings(readings));
    this.writer.onCommitted((n) => this.batcher.noteCommitted(n));
    this.writer.onCommitted((n) => (this.committed += n));
    this.writer.onCommittedReadings((readings) => {
      this.lastValues.note(readings);
      this.homeAssistant?.noteReadings(readings);
      this.adaptive?.noteReadings(readings);
    });
    this.configVersion = fileVersion(loaded.path);
    this.heartbeat = new Heartbeat(
      this.events,
      config.heartbeat.interval_s * 1000,
      () => ({
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        boot: this.bootCounter,
        clockSynced: this.clock.isSynced(),
        storeBytes: this.upkeep.budget.usage().usedBytes,
        oldestPendingMs: batches.oldestPendingAgeMs(Date.now()),
        configVersion: this.configVersion,
        models: [...new Set(Object.values(this.score.snapshot()?.bindings ?? {}).map((b) => b.model))].join(','),
      }),
      log.child({ component: 'heartbeat' }),
    );
    const guardShares = new Map(
      Object.entries(config.sources).flatMap(([id, s]) => (s.type === 'mqtt' ? [[id, { rows: guardRowsFor(s.max_inflight), maxAgeMs: s.session_expiry_s * 1000 }] as const] : [])),
    );
    const budget = new StoreBudget(this.db, dbPath, config.store.max_bytes, budgetLog, reserve, new RedeliveryGuardPruner(this.db, guardShares));
    this.upkeep = new StoreUpkeep(this.db, budget, () => this.loaded.config.store.retain_delivered_hours * 3_600_000, log, budgetLog);
    this.writer.onCommitted(() => this.upkeep.enforceBudget());
    this.writer.onStoreFull(() => this.upkeep.commitFoundStoreFull());
    this.writeMeter = new StoreWriteMeter(this.db);

    if (config.uplink) {
      const uplink = this.uplink!;
      this.forwarder = new Forwarder(
        this.db,
        batches,
        uplink,
        { retryInitialMs: config.uplink.retry_initial_ms, retryMaxMs: config.uplink.retry_max_ms, maxBatchesPerS: config.uplink.max_batches_per_s, device: this.identity.publicKey, observer: this.observability.deliveryObserver(), onStoreFull: () => this.upkeep.writeFoundStoreFull() },
        log.child({ component: 'uplink', uplink: uplink.description }),
      );
      this.batcher.onBatch(() => this.forwarder?.wake());
    }

    // Sources hand their readings to ingest, which checks them; the guard watches, flags and budgets them; commit stores them.
    this.guard = this.buildGuardStage();
    // Through the field: a config reload may replace the guard (new ranges, budgets, policies).
    const ingest = new IngestStage({ submit: (sub) => this.guard.submit(sub) });
    this.sources = Object.entries(config.sources).map(([id, cfg]) =>
      plugins.sources.get(cfg.type)!(cfg, {
        id,
        sink: ingest,
        clock: this.clock,
        log: log.child({ source: id }),
        resolvePath: loaded.resolvePath,
        cursors: (prefix) => readCursors(this.db, id, prefix),
        event: (event, counter) => this.losses.record(event, counter),
        memo: this.losses.memo(id),
        events: this.events,
      }),
    );
    const forwarder = this.forwarder;
    this.state = new AgentState(
      this.db,
      batches,
      this.sources,
      this.clock,
      dbPath,
      forwarder && config.uplink
        ? {
            url: config.uplink.url,
            consecutiveFailures: () => forwarder.consecutiveFailures,
            keyMismatch: () => {
              const receiver = forwarder.receiverKeyMismatch;
              return receiver && config.uplink?.receiver_key ? { receiver, configured: config.uplink.receiver_key } : undefined;
            },
          }
        : undefined,
      { deviceId: this.identity.deviceId, boot: this.bootCounter, startedAt: this.startedAt, batchMaxAgeMs: config.batch.max_age_ms, storeMaxBytes: config.store.max_bytes, ...(config.uplink ? { maxPendingBatches: config.batch.max_pending } : {}) },
    );

    this.score = new ScoreSlot({
      db: this.db,
      counters: this.readingStore,
      bootCounter: this.bootCounter,
      deviceId: this.identity.deviceId,
      onVerdicts: (n) => this.batcher.noteCommitted(n),
      side: { publish: (v) => (this.homeAssistant?.publish(v), this.adaptive?.noteAlert(v)) },
      lastValues: this.lastValues,
      metrics: this.observability.metrics,
      log: log.child({ component: 'inference' }),
      modelsDir: (loaded) => this.modelsDir(loaded),
    });
    this.writer.onCommittedReadings((readings) => this.score.enqueue(readings));
    this.state.inference = () => (this.score.current ? { warnings: this.score.warnings(), disabled: this.score.disabled() } : undefined);
    this.state.configNotice = () => this.reloads.notice();

    this.stages = [
      { name: 'sources', start: () => this.startSources(), stop: async () => void (await Promise.allSettled(this.sources.map((s) => s.stop()))) },
      // Stateless: it checks each submission on its way to commit.
      { name: 'ingest', start: () => undefined, stop: () => undefined },
      // Its checks keep state in memory and the store; ticks release quiet quarantines, close maintenance windows, apply operator requests.
      { name: 'guard', start: () => this.guard.start(), stop: () => this.guard.stop() },
      { name: 'commit', start: () => this.upkeep.start(), stop: () => this.stopCommit() },
      // Models load while the sources start (score-slot.ts start()); start() awaits them, so a bad
      // binding still stops the start with its reason. The updater starts once they are in place.
      {
        name: 'score',
        start: () => {
          const ready = this.score.start(this.loaded).then(() => this.startUpdater());
          this.scoreReady = ready;
          ready.catch(() => undefined); // awaited in start(); not unhandled if a later stage fails first
        },
        stop: async () => {
          await this.scoreReady?.catch(() => undefined);
          this.updater?.stop();
          await this.score.stop();
        },
      },
      {
        name: 'batch',
        start: () => {
          this.batcher.start();
          // Heartbeats are events for the batches: started after the batcher, the last (agent.stop) recorded before the final cut.
          this.heartbeat.start();
        },
        stop: () => {
          this.heartbeat.stop();
          this.batcher.stop();
          this.batcher.cutDue(true);
        },
      },
      { name: 'uplink', start: () => this.forwarder?.start(), stop: ({ drainMs }) => this.stopUplink(drainMs) },
    ];
    checkStageOrder(this.stages);
  }

  /** The guard stage (agent/guard/build.ts) in front of commit; maintenance assets include the inference bindings' assets. */
  private buildGuardStage(): GuardStage {
    const { config } = this.loaded;
    const assets: Record<string, string[]> = {};
    for (const b of Object.values(config.inference?.bindings ?? {})) if (b.asset && b.channels) assets[b.asset] = Object.values(b.channels);
    Object.assign(assets, config.guard.assets);
    const counted = new RepeatedLog(this.log, 'warn', 'could not count a guard observation (the store refused the write)');
    return buildGuard(config.guard, this.writer, {
      db: this.db,
      reports: { event: (event, counter) => this.losses.record(event, counter) },
      count: (name, label) => {
        try {
          this.readingStore.addCounter(name, label);
        } catch (err) {
          counted.report(err);
        }
      },
      assets,
      log: this.log.child({ component: 'guard' }),
    });
  }

  async start(): Promise<void> {
    // Side output first, so the entities of the first readings are announced.
    await this.startHomeAssistant();
    await this.startAdaptive();
    this.clock.start();
    await startStages(this.stages);
    await this.scoreReady;
    // The side: health, metrics and the status snapshot observe the running stages.
    await this.observability.start(this.state);
    this.writeSnapshot();
    // The periodic snapshot rides in the next reading commit (no fsync of its own; store/commit-riders.ts).
    this.snapshotTimer = setInterval(() => this.readingStore.riders.ride('status-snapshot', () => this.writeSnapshot(), (err) => this.snapshotFailed.report(err)), STATUS_SNAPSHOT_MS);
    this.log.info(
      { device: this.identity.deviceId, boot: this.bootCounter, sources: this.sources.map((s) => s.id), uplink: this.loaded.config.uplink?.url ?? null },
      'agent running',
    );
  }

  private async startSources(): Promise<void> {
    for (const s of this.sources) {
      try {
        await s.start();
      } catch (err) {
        // A source whose config cannot work (its listen port taken) fails the start: an agent
        // without that input is not what the operator configured (issue 12).
        if (err instanceof AgentError && err.exitCode === 2) throw err;
        // One broken source must not stop the others (or the delivery of what is already stored).
        this.state.startErrors.set(s.id, errorMessage(err));
        this.log.error({ err, source: s.id }, 'source failed to start; the others keep running');
      }
    }
    if (this.sources.length === 0) this.log.warn('no sources configured: only batches already in the store are delivered');
  }

  /** Commits what was accepted; nothing more is accepted. */
  private stopCommit(): void {
    this.upkeep.stop();
    this.writer.close();
  }

  private async stopUplink(drainMs: number): Promise<void> {
    await this.forwarder?.drain(drainMs);
    await this.forwarder?.stop();
    await this.uplink?.close?.().catch((err: unknown) => this.log.warn({ err }, 'closing the uplink failed'));
  }

  /** The model set in force: the one an update applied (docs/updates.md §6), else inference.models_dir, else the shipped one. */
  private async modelsDir(loaded: LoadedConfig): Promise<string> {
    const applied = this.modelsOverride ?? readUpdateState(this.db).models?.current.dir;
    if (applied) return applied;
    const cfg = loaded.config.inference;
    if (cfg?.models_dir) return loaded.resolvePath(cfg.models_dir);
    return (await import('../inference/manifest.js')).SHIPPED_MODELS_DIR;
  }

  /** Takes signed updates when update.publisher_key is set; the uplink hands it the bundles in the receiver's answers. */
  private async startUpdater(): Promise<void> {
    this.updater = await startUpdater({
      db: this.db,
      events: this.events,
      device: this.identity.publicKey,
      log: this.log,
      hasSources: this.sources.length > 0,
      config: () => this.loaded,
      reloadConfig: (loaded) => this.reloadConfig(loaded),
      inference: () => this.score.current,
      committed: () => this.committed,
      useModels: (dir) => (this.modelsOverride = dir),
      // A new model set: the score stage rebuilt on what modelsDir() now names (readings meanwhile held, then scored).
      restartInference: () => this.score.swap(this.loaded),
    });
  }

  private async startAdaptive(): Promise<void> {
    const cfg = this.loaded.config.adaptive;
    if (!cfg) return;
    const log = this.log.child({ component: 'adaptive' });
    const { AdaptiveReporting } = await import('../adaptive/adaptive-reporting.js');
    const broker = () => resolveSideBroker(this.loaded, 'adaptive.commands', cfg.commands!, 'cmd', `edge-agent-cmd-${this.identity.deviceId.slice(-12)}`, log);
    const { HeldReadings } = await import('../store/held-readings.js');
    const { StatusQueries } = await import('../store/status-queries.js');
    this.adaptive = await AdaptiveReporting.create(cfg, {
      sources: this.sources,
      events: this.events,
      ...(cfg.commands ? { broker } : {}),
      held: new HeldReadings(this.db, this.bootCounter),
      holdWhen: (hold) => this.readingStore.holdWhen(hold),
      activeAlerts: () => new StatusQueries(this.db).alertsActive(),
      log,
    });
    await this.adaptive.start();
  }

  private async startHomeAssistant(): Promise<void> {
    const cfg = this.loaded.config.home_assistant;
    if (!cfg) return;
    const log = this.log.child({ component: 'home-assistant' });
    const nodeId = `edge_agent_${this.identity.deviceId.slice(-12)}`;
    const broker = resolveSideBroker(this.loaded, 'home_assistant', cfg, 'ha', `edge-agent-ha-${this.identity.deviceId.slice(-12)}`, log);
    const { HomeAssistant } = await import('../integrations/home-assistant.js');
    const batches = new BatchStore(this.db);
    this.homeAssistant = new HomeAssistant(
      {
        ...broker,
        discoveryPrefix: cfg.discovery_prefix,
        baseTopic: cfg.base_topic ?? `edge-agent/${nodeId}`,
        nodeId,
        deviceId: this.identity.deviceId,
        stateIntervalMs: cfg.state_interval_s * 1000,
        maxEntities: cfg.max_entities,
        agentState: () => ({ unbatched_readings: batches.unbatchedSummary().count, pending_batches: batches.pendingCount(), uptime_s: Math.round((Date.now() - this.startedAt) / 1000) }),
      },
      log,
    );
    await this.homeAssistant.start();
  }

  /**
   * Stops accepting, commits what was accepted, cuts the last batch, gives the uplink up to
   * `drainMs` to deliver it (what is left is delivered at the next start), then closes the store.
   */
  async stop(drainMs = 2000): Promise<void> {
    if (this.snapshotTimer) clearInterval(this.snapshotTimer);
    await this.observability.stop();
    await stopStages(this.stages, drainMs, this.log);
    await this.homeAssistant?.stop();
    await this.adaptive?.stop();
    this.clock.stop();
    this.readingStore.riders.flushAlone(); // nothing left to fire after the store is closed
    this.writeSnapshot(false);
    this.db.close();
    this.releaseLock();
    this.log.info('agent stopped');
  }

  /**
   * Resolves once the run is started and every source takes input: what `run --ready-fd` reports,
   * so tests and supervisors wait for this fact instead of reading log text.
   */
  async whenReady(): Promise<ReadyReport> {
    await Promise.all([...this.sources.map((s) => s.ready?.() ?? Promise.resolve()), this.adaptive?.ready() ?? Promise.resolve()]);
    const http = this.observability.address();
    return { ready: true, pid: process.pid, device: this.identity.deviceId, boot: this.bootCounter, sources: this.sources.map((s) => s.id), http: http ?? null };
  }

  /**
   * Takes over a new, already validated config without a restart (SIGHUP, or a signed config update):
   * the live keys (config-reload.ts) apply now; the others are reported as needing a restart.
   * Reloads run one at a time. Rejects, with nothing changed, when the new inference bindings cannot
   * be built (an unknown model, a bad threshold) or a side broker cannot be named.
   */
  reloadConfig(next: LoadedConfig): Promise<ReloadResult> {
    const run = this.reloading.then(() => this.applyConfig(next));
    this.reloading = run.catch(() => undefined);
    return run;
  }

  /** SIGHUP: reads edge-agent.yaml again; a file that fails validation is refused with its file:line: key error and the running config kept. */
  async reloadFromFile(): Promise<ReloadResult> {
    let next: LoadedConfig;
    try {
      next = loadConfig(this.loaded.dataDir);
    } catch (err) {
      this.refuse(err);
      throw err;
    }
    return this.reloadConfig(next);
  }

  private refuse(err: unknown): void {
    this.reloads.refused(errorMessage(err));
    this.log.error(`config reload refused, the running config is kept: ${errorMessage(err)}`);
    this.writeSnapshot();
  }

  private async applyConfig(next: LoadedConfig): Promise<ReloadResult> {
    const { applied } = classifyChanges(this.loaded.config, next.config);
    const { needsRestart } = classifyChanges(this.startedWith, next.config);
    const touched = (prefix: string) => applied.some((k) => k === prefix || k.startsWith(`${prefix}.`));
    try {
      // Everything that can refuse runs before anything changes.
      const ha = next.config.home_assistant;
      if (touched('home_assistant') && ha) resolveSideBroker(next, 'home_assistant', ha, 'ha', 'check', this.log);
      if (touched('inference')) await this.score.swap(next);
    } catch (err) {
      this.refuse(err);
      throw err;
    }
    this.loaded = next;
    this.configVersion = fileVersion(next.path);
    const c = next.config;
    if (touched('guard')) {
      // The new guard starts with empty in-memory windows (stuck, jump, rate buckets); quarantines
      // and maintenance windows live in the store and carry over.
      const old = this.guard;
      this.guard = this.buildGuardStage();
      this.guard.start();
      old.stop();
    }
    if (touched('batch')) this.batcher.setLimits(batchLimits(c));
    if (c.uplink && touched('uplink')) this.forwarder?.setPacing({ retryInitialMs: c.uplink.retry_initial_ms, retryMaxMs: c.uplink.retry_max_ms, maxBatchesPerS: c.uplink.max_batches_per_s });
    if (touched('heartbeat')) this.heartbeat.setIntervalMs(c.heartbeat.interval_s * 1000);
    if (c.adaptive && (touched('adaptive.policy') || touched('adaptive.retry_s'))) this.adaptive?.setPolicy(c.adaptive);
    if (touched('log') && !this.logLevelPinned) this.log.level = c.log.level;
    if (touched('home_assistant')) {
      await this.homeAssistant?.stop();
      this.homeAssistant = undefined;
      // Its broker may be down: the rest of the reload stands, and the error says what to fix.
      await this.startHomeAssistant().catch((err: unknown) => this.log.error({ err: errorMessage(err) }, 'config reload: Home Assistant discovery could not start with the new settings'));
    }
    const result = { applied, needsRestart };
    this.reloads.applied(result);
    this.log.info({ applied, needs_restart: needsRestart, version: this.configVersion }, needsRestart.length > 0 ? `config reloaded; restart needed for: ${needsRestart.join(', ')}` : 'config reloaded');
    this.writeSnapshot();
    return result;
  }

  snapshot(): AgentSnapshot {
    return {
      pid: process.pid,
      started_at: this.startedAt,
      updated_at: Date.now(),
      boot: this.bootCounter,
      clock_synced: this.clock.isSynced(),
      sources: Object.fromEntries(this.sources.map((s) => [s.id, s.health()])),
      ...(this.score.current ? { inference: this.score.snapshot()! } : {}),
      guard: { check_failures: Object.fromEntries(this.guard.failures) },
      ...(this.adaptive ? { adaptive: this.adaptive.snapshot() } : {}),
      config: { version: this.configVersion, ...this.reloads.snapshot() },
      store: { ...this.upkeep.budget.usage(), max_bytes: this.upkeep.budget.maxBytes, ...this.writeMeter.rates() },
      ...(this.updater ? { update: this.updater.state() } : {}),
    };
  }

  /** `edge-agent status` runs in another process: it reads this from the store. */
  private writeSnapshot(running = true): void {
    try {
      // The health report rides along, so `status` (another process) shows the checks as /healthz would.
      this.writeMeter.recordWithSnapshot(() => JSON.stringify({ ...this.snapshot(), health: this.observability.report(this.state), running }));
      this.snapshotFailed.recovered();
    } catch (err) {
      this.snapshotFailed.report(err);
    }
  }
}

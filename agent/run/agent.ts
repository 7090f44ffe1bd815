import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { ClockStatus, probeOsClockSync, probeOsClockSyncAsync } from '../clock/clock-status.js';
import type { LoadedConfig } from '../config/load.js';
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
import { pruneDelivered } from '../store/retention.js';
import { StoreBudget } from '../store/budget.js';
import { commitGroupLimit, pendingShareBytes } from '../store/budget-shares.js';
import { guardRowsFor, RedeliveryGuardPruner } from '../store/redelivery-guard.js';
import { EventStore } from '../store/event-store.js';
import { StoreWriteMeter } from '../store/write-meter.js';
import { readCursors, ReadingStore } from '../store/reading-store.js';
import { loadSourceFactories, type SourceFactory } from '../sources/registry.js';
import type { Source, SourceHealth } from '../sources/source.js';
import { loadUplinkFactory, type UplinkFactory } from '../uplink/registry.js';
import type { Uplink } from '../uplink/uplink.js';
import { AgentError } from '../errors.js';
import type { AlertPublisher } from '../inference/alert-publisher.js';
import { AgentState } from '../health/agent-state.js';
import { Observability } from '../health/observability.js';
import { IngestStage } from '../ingest/ingest-stage.js';
import { buildGuard } from '../guard/build.js';
import type { GuardStage } from '../guard/guard-stage.js';
import { Batcher } from '../pipeline/batcher.js';
import { Heartbeat } from '../pipeline/heartbeat.js';
import { resolveSideBroker } from './side-broker.js';
import { LastValues } from '../integrations/last-values.js';
import type { HomeAssistant } from '../integrations/home-assistant.js';
import { Forwarder } from '../pipeline/forwarder.js';
import { GroupCommitWriter } from '../pipeline/group-commit.js';
import { InferenceStage, type InferenceStats } from '../pipeline/inference-stage.js';
import { checkStageOrder, startStages, stopStages, type RunStage } from './stage.js';
import { LossReporting } from './loss-reporting.js';

const STATUS_SNAPSHOT_MS = 5000;
const PRUNE_INTERVAL_MS = 10 * 60_000;
const BUDGET_INTERVAL_MS = 5000;

export interface AgentSnapshot {
  pid: number;
  started_at: number;
  updated_at: number;
  boot: number;
  clock_synced: boolean;
  sources: Record<string, SourceHealth>;
  inference?: InferenceStats;
  store: { fileBytes: number; walBytes: number; usedBytes: number; max_bytes: number; written_bytes: number; written_bytes_per_hour: number | null };
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
  private inference: InferenceStage | undefined;
  private alertPublisher: AlertPublisher | undefined;
  private readonly batcher: Batcher;
  private readonly forwarder: Forwarder | undefined;
  private readonly uplink: Uplink | undefined;
  private readonly sources: Source[];
  private readonly clock: ClockStatus;
  private readonly budget: StoreBudget;
  private readonly writeMeter: StoreWriteMeter;
  private budgetTimer: NodeJS.Timeout | undefined;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly releaseLock: () => void;
  private readonly heartbeat: Heartbeat;
  private readonly events: EventStore;
  private readonly losses: LossReporting;
  private readonly budgetFailed: RepeatedLog;
  private readonly snapshotFailed: RepeatedLog;
  private readonly pruneFailed: RepeatedLog;
  private readonly makeRoomFailed: RepeatedLog;
  /** Side outputs fed from the run: last values for alert messages, Home Assistant discovery. */
  private readonly lastValues = new LastValues();
  private homeAssistant: HomeAssistant | undefined;
  /** Metrics (pass `observability.metrics` to components), backlog progress, the health endpoint. */
  readonly observability: Observability;
  private readonly state: AgentState;
  /** The run, in the direction of data; started last to first, stopped first to last. */
  private readonly stages: readonly RunStage[];

  /** Loads the code of the configured source and uplink plugins, then assembles the run. */
  static async create(loaded: LoadedConfig, log: Logger): Promise<Agent> {
    const { config } = loaded;
    const plugins = {
      sources: await loadSourceFactories(Object.values(config.sources).map((s) => s.type)),
      ...(config.uplink ? { uplink: await loadUplinkFactory(config.uplink.type) } : {}),
    };
    return new Agent(loaded, log, plugins);
  }

  private constructor(
    private readonly loaded: LoadedConfig,
    private readonly log: Logger,
    plugins: { sources: Map<string, SourceFactory>; uplink?: UplinkFactory },
  ) {
    const { config } = loaded;
    this.budgetFailed = new RepeatedLog(log, 'error', 'enforcing the store budget failed; will retry');
    this.snapshotFailed = new RepeatedLog(log, 'warn', 'could not write the status snapshot');
    this.pruneFailed = new RepeatedLog(log, 'warn', 'pruning delivered data failed; will retry');
    this.makeRoomFailed = new RepeatedLog(log, 'error', 'disk full: could not free space in the store yet (no disk reserve left?); will retry');
    this.identity = readKeyFile(loaded.resolvePath(config.device.key_file));
    const receiverKey = parseReceiverKey(loaded);
    // Built before the store is opened: a TLS file problem is a config error with nothing to undo. MQTT connects lazily.
    this.uplink = config.uplink
      ? plugins.uplink!(config.uplink, { deviceId: this.identity.deviceId, ...(receiverKey ? { receiverKey } : {}), resolvePath: loaded.resolvePath, log: log.child({ component: 'uplink' }) })
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
    this.losses = new LossReporting(this.db, this.events, this.readingStore, log);
    this.clock = new ClockStatus(
      config.clock.synced,
      probeOsClockSync,
      { thresholdMs: config.clock.step_threshold_ms, settleMs: config.clock.step_settle_s * 1000, onStep: (step) => this.losses.clockStepped(step, config.clock.step_settle_s) },
      probeOsClockSyncAsync,
    );

    this.observability = new Observability(this.db, config.http, log);
    this.writer = new GroupCommitWriter(this.readingStore, commitGroupLimit(config.store.max_bytes), config.store.commit_interval_ms);
    this.observability.watchWriter(this.writer);
    this.losses.watchRates(this.writer);
    const batches = new BatchStore(this.db);
    this.batcher = new Batcher(
      batches,
      this.identity,
      {
        maxReadings: config.batch.max_readings,
        maxAgeMs: config.batch.max_age_ms,
        bootCounter: this.bootCounter,
        clockSynced: () => this.clock.isSynced(),
        // Without an uplink, batches are kept for export: nothing drains them, so no cap.
        maxPending: config.uplink ? config.batch.max_pending : Infinity,
        // With a budget, pending batches also stop at their byte share (store/budget-shares.ts).
        ...(config.uplink && config.store.max_bytes > 0 ? { maxPendingBytes: pendingShareBytes({ maxPending: config.batch.max_pending, maxReadings: config.batch.max_readings }) } : {}),
        reportDrops: config.uplink !== undefined,
        onStoreFull: () => this.storeFullOutsideIngest(),
        format: config.batch.format,
        ...(config.uplink?.encrypt_to ? { sealTo: parseUplinkKey(loaded, 'encrypt_to')! } : {}),
      },
      log.child({ component: 'batcher' }),
    );
    this.writer.onCommitted((n) => this.batcher.noteCommitted(n));
    this.writer.onCommittedReadings((readings) => {
      this.lastValues.note(readings);
      this.homeAssistant?.noteReadings(readings);
    });
    const configVersion = createHash('sha256').update(readFileSync(loaded.path)).digest('hex').slice(0, 16);
    this.heartbeat = new Heartbeat(
      this.events,
      config.heartbeat.interval_s * 1000,
      () => ({
        uptimeS: Math.round((Date.now() - this.startedAt) / 1000),
        boot: this.bootCounter,
        clockSynced: this.clock.isSynced(),
        storeBytes: this.budget.usage().usedBytes,
        oldestPendingMs: batches.oldestPendingAgeMs(Date.now()),
        configVersion,
        models: [...new Set(Object.values(this.inference?.snapshot().bindings ?? {}).map((b) => b.model))].join(','),
      }),
      log.child({ component: 'heartbeat' }),
    );
    const guardShares = new Map(
      Object.entries(config.sources).flatMap(([id, s]) => (s.type === 'mqtt' ? [[id, { rows: guardRowsFor(s.max_inflight), maxAgeMs: s.session_expiry_s * 1000 }] as const] : [])),
    );
    this.budget = new StoreBudget(this.db, dbPath, config.store.max_bytes, budgetLog, reserve, new RedeliveryGuardPruner(this.db, guardShares));
    this.writer.onCommitted(() => this.enforceBudget());
    const storeFull = new RepeatedLog(budgetLog, 'error', 'store is full (SQLITE_FULL): dropping the oldest unbatched readings, then retrying the commit');
    this.writer.onStoreFull(() => {
      storeFull.report({ code: 'SQLITE_FULL', message: 'database or disk is full' }, { ...this.budget.usage() });
      this.budget.makeRoom();
    });
    this.writeMeter = new StoreWriteMeter(this.db);

    if (config.uplink) {
      const uplink = this.uplink!;
      this.forwarder = new Forwarder(
        this.db,
        batches,
        uplink,
        { retryInitialMs: config.uplink.retry_initial_ms, retryMaxMs: config.uplink.retry_max_ms, maxBatchesPerS: config.uplink.max_batches_per_s, device: this.identity.publicKey, observer: this.observability.deliveryObserver(), onStoreFull: () => this.storeFullOutsideIngest() },
        log.child({ component: 'uplink', uplink: uplink.description }),
      );
      this.batcher.onBatch(() => this.forwarder?.wake());
    }

    // Sources hand their readings to ingest, which checks them; the guard watches, flags and budgets them; commit stores them.
    const guard = this.buildGuardStage();
    const ingest = new IngestStage(guard);
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
      forwarder && config.uplink ? { url: config.uplink.url, consecutiveFailures: () => forwarder.consecutiveFailures } : undefined,
      { deviceId: this.identity.deviceId, boot: this.bootCounter, startedAt: this.startedAt, batchMaxAgeMs: config.batch.max_age_ms, storeMaxBytes: config.store.max_bytes, ...(config.uplink ? { maxPendingBatches: config.batch.max_pending } : {}) },
    );

    this.stages = [
      { name: 'sources', start: () => this.startSources(), stop: async () => void (await Promise.allSettled(this.sources.map((s) => s.stop()))) },
      // Stateless: it checks each submission on its way to commit.
      { name: 'ingest', start: () => undefined, stop: () => undefined },
      // Its checks keep state in memory and the store; ticks release quiet quarantines, close maintenance windows, apply operator requests.
      { name: 'guard', start: () => guard.start(), stop: () => guard.stop() },
      { name: 'commit', start: () => this.startStoreUpkeep(), stop: () => this.stopCommit() },
      // Models load before any source starts: a tampered model or a bad binding stops the start with its reason.
      { name: 'score', start: () => this.startInference(), stop: () => this.stopInference() },
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
    this.clock.start();
    await startStages(this.stages);
    // The side: health, metrics and the status snapshot observe the running stages.
    await this.observability.start(this.state);
    this.writeSnapshot();
    this.snapshotTimer = setInterval(() => this.writeSnapshot(), STATUS_SNAPSHOT_MS);
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
        this.log.error({ err, source: s.id }, 'source failed to start; the others keep running');
      }
    }
    if (this.sources.length === 0) this.log.warn('no sources configured: only batches already in the store are delivered');
  }

  /** Retention and the disk budget, now and on timers. */
  private startStoreUpkeep(): void {
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.enforceBudget();
    this.budgetTimer = setInterval(() => this.enforceBudget(), BUDGET_INTERVAL_MS);
  }

  /** Commits what was accepted; nothing more is accepted. */
  private stopCommit(): void {
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    if (this.budgetTimer) clearInterval(this.budgetTimer);
    this.writer.close();
  }

  private async stopInference(): Promise<void> {
    await this.inference?.stop();
    await this.alertPublisher?.stop();
  }

  private async stopUplink(drainMs: number): Promise<void> {
    await this.forwarder?.drain(drainMs);
    await this.forwarder?.stop();
    await this.uplink?.close?.().catch((err: unknown) => this.log.warn({ err }, 'closing the uplink failed'));
  }

  /** Loads and checks the bound models, then scores every committed reading off the acknowledgement path. */
  private async startInference(): Promise<void> {
    const cfg = this.loaded.config.inference;
    if (!cfg || Object.keys(cfg.bindings).length === 0) return;
    const { SHIPPED_MODELS_DIR } = await import('../inference/manifest.js');
    if (cfg.alerts) this.alertPublisher = await this.createAlertPublisher(cfg.alerts);
    this.inference = await InferenceStage.create(cfg, {
      modelsDir: cfg.models_dir ? this.loaded.resolvePath(cfg.models_dir) : SHIPPED_MODELS_DIR,
      ...(cfg.publisher_key ? { publisherKey: publicKeyFromDeviceId(cfg.publisher_key) } : {}),
      configPath: this.loaded.path,
      db: this.db,
      counters: this.readingStore,
      bootCounter: this.bootCounter,
      onVerdicts: (n) => this.batcher.noteCommitted(n),
      publisher: { publish: (v) => (this.alertPublisher?.publish(v), this.homeAssistant?.publish(v)) },
      metrics: this.observability.metrics,
      log: this.log.child({ component: 'inference' }),
    });
    this.writer.onCommittedReadings((readings) => this.inference?.enqueue(readings));
    this.inference.start();
    const stage = this.inference;
    this.state.inferenceWarnings = () => stage.warnings();
    await this.alertPublisher?.start();
  }

  private async createAlertPublisher(alerts: NonNullable<NonNullable<LoadedConfig['config']['inference']>['alerts']>): Promise<AlertPublisher> {
    const { url, connect, clientId } = resolveSideBroker(this.loaded, 'inference.alerts', alerts, 'alerts', `edge-agent-alerts-${this.identity.deviceId.slice(-12)}`, this.log.child({ component: 'alerts' }));
    const { AlertPublisher } = await import('../inference/alert-publisher.js');
    return new AlertPublisher(
      {
        url,
        clientId,
        connect,
        topicPrefix: alerts.topic_prefix,
        retain: alerts.retain,
        deviceId: this.identity.deviceId,
        lastReading: (series) => this.lastValues.get(series),
      },
      this.log.child({ component: 'alerts' }),
    );
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
    this.clock.stop();
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
    await Promise.all(this.sources.map((s) => s.ready?.() ?? Promise.resolve()));
    const http = this.observability.address();
    return { ready: true, pid: process.pid, device: this.identity.deviceId, boot: this.bootCounter, sources: this.sources.map((s) => s.id), http: http ?? null };
  }

  snapshot(): AgentSnapshot {
    return {
      pid: process.pid,
      started_at: this.startedAt,
      updated_at: Date.now(),
      boot: this.bootCounter,
      clock_synced: this.clock.isSynced(),
      sources: Object.fromEntries(this.sources.map((s) => [s.id, s.health()])),
      ...(this.inference ? { inference: this.inference.snapshot() } : {}),
      store: { ...this.budget.usage(), max_bytes: this.budget.maxBytes, ...this.writeMeter.rates() },
    };
  }

  private lastRoomMadeAt = -Infinity;

  /** A batch cut or a delivery record found the disk full (no commit failed yet): make room the same way, at most once a second. */
  private storeFullOutsideIngest(): void {
    if (performance.now() - this.lastRoomMadeAt < 1000) return;
    this.lastRoomMadeAt = performance.now();
    try {
      this.budget.makeRoom();
    } catch (err) {
      this.makeRoomFailed.report(err);
    }
  }

  private enforceBudget(): void {
    try {
      this.budget.enforce();
      this.budgetFailed.recovered();
    } catch (err) {
      this.budgetFailed.report(err);
    }
  }

  private prune(): void {
    try {
      const r = pruneDelivered(this.db, this.loaded.config.store.retain_delivered_hours * 3_600_000);
      if (r.batches > 0) this.log.info({ batches: r.batches, readings: r.readings }, 'pruned delivered data past retention');
      this.pruneFailed.recovered();
    } catch (err) {
      this.pruneFailed.report(err);
    }
  }

  /** `edge-agent status` runs in another process: it reads this from the store. */
  private writeSnapshot(running = true): void {
    try {
      this.writeMeter.recordWithSnapshot(() => JSON.stringify({ ...this.snapshot(), running }));
      this.snapshotFailed.recovered();
    } catch (err) {
      this.snapshotFailed.report(err);
    }
  }
}

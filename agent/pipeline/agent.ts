import { ClockStatus } from '../clock/clock-status.js';
import type { LoadedConfig } from '../config/load.js';
import { publicKeyFromDeviceId } from '../identity/device-id.js';
import { readKeyFile, type Identity } from '../identity/keys.js';
import type { Logger } from '../log.js';
import { BatchStore } from '../store/batch-store.js';
import { openDatabase, type Db } from '../store/database.js';
import { acquireDataDirLock } from '../store/lock.js';
import { pruneDelivered } from '../store/retention.js';
import { bindDevice, nextBootCounter, setMeta } from '../store/meta.js';
import { readSerialProgress, ReadingStore } from '../store/reading-store.js';
import { createSource } from '../sources/registry.js';
import type { Source, SourceHealth } from '../sources/source.js';
import { HttpUplink } from '../uplink/http/http-uplink.js';
import { AgentError } from '../errors.js';
import { AgentState } from '../health/agent-state.js';
import { Observability } from '../health/observability.js';
import { Batcher } from './batcher.js';
import { Forwarder } from './forwarder.js';
import { GroupCommitWriter } from './group-commit.js';

const STATUS_SNAPSHOT_MS = 5000;
const PRUNE_INTERVAL_MS = 10 * 60_000;

export interface AgentSnapshot {
  pid: number;
  started_at: number;
  updated_at: number;
  boot: number;
  clock_synced: boolean;
  sources: Record<string, SourceHealth>;
}

function parseReceiverKey(loaded: LoadedConfig): Uint8Array | undefined {
  const text = loaded.config.uplink?.receiver_key;
  if (!text) return undefined;
  try {
    return publicKeyFromDeviceId(text);
  } catch (err) {
    throw new AgentError('CONFIG_INVALID', `${loaded.path}: uplink.receiver_key: ${(err as Error).message}`);
  }
}

/** One running agent: store, sources, batcher and forwarder, started and stopped in the right order. */
export class Agent {
  readonly identity: Identity;
  readonly bootCounter: number;
  private readonly db: Db;
  private readonly writer: GroupCommitWriter;
  private readonly batcher: Batcher;
  private readonly forwarder: Forwarder | undefined;
  private readonly sources: Source[];
  private readonly clock: ClockStatus;
  private snapshotTimer: NodeJS.Timeout | undefined;
  private pruneTimer: NodeJS.Timeout | undefined;
  private readonly startedAt = Date.now();
  private readonly releaseLock: () => void;
  /** Metrics (pass `observability.metrics` to components), backlog progress, the health endpoint. */
  readonly observability: Observability;
  private readonly state: AgentState;

  constructor(
    private readonly loaded: LoadedConfig,
    private readonly log: Logger,
  ) {
    const { config } = loaded;
    this.identity = readKeyFile(loaded.resolvePath(config.device.key_file));
    const receiverKey = parseReceiverKey(loaded);
    const dbPath = loaded.resolvePath(config.store.path);
    this.releaseLock = acquireDataDirLock(loaded.dataDir);
    let db: Db | undefined;
    try {
      db = openDatabase(dbPath);
      bindDevice(db, this.identity.deviceId, dbPath);
      this.bootCounter = nextBootCounter(db);
    } catch (err) {
      db?.close();
      this.releaseLock();
      throw err;
    }
    this.db = db;
    this.clock = new ClockStatus(config.clock.synced);

    this.observability = new Observability(this.db, config.http, log);
    this.writer = new GroupCommitWriter(new ReadingStore(this.db, this.bootCounter));
    this.observability.watchWriter(this.writer);
    const batches = new BatchStore(this.db);
    this.batcher = new Batcher(
      batches,
      this.identity,
      { maxReadings: config.batch.max_readings, maxAgeMs: config.batch.max_age_ms, bootCounter: this.bootCounter, clockSynced: () => this.clock.isSynced() },
      log.child({ component: 'batcher' }),
    );
    this.writer.onCommitted((n) => this.batcher.noteCommitted(n));

    if (config.uplink) {
      const uplink = new HttpUplink({ url: config.uplink.url, timeoutMs: config.uplink.timeout_ms, ...(receiverKey ? { receiverKey } : {}) });
      this.forwarder = new Forwarder(
        this.db,
        batches,
        uplink,
        { retryInitialMs: config.uplink.retry_initial_ms, retryMaxMs: config.uplink.retry_max_ms, maxBatchesPerS: config.uplink.max_batches_per_s, device: this.identity.publicKey, observer: this.observability.deliveryObserver() },
        log.child({ component: 'uplink', uplink: uplink.description }),
      );
      this.batcher.onBatch(() => this.forwarder?.wake());
    }

    this.sources = Object.entries(config.sources).map(([id, cfg]) =>
      createSource(cfg, {
        id,
        writer: this.writer,
        clock: this.clock,
        log: log.child({ source: id }),
        resolvePath: loaded.resolvePath,
        serialProgress: (device, session) => readSerialProgress(this.db, id, device, session),
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
      { deviceId: this.identity.deviceId, boot: this.bootCounter, startedAt: this.startedAt, batchMaxAgeMs: config.batch.max_age_ms },
    );
  }

  async start(): Promise<void> {
    this.batcher.start();
    this.forwarder?.start();
    for (const s of this.sources) {
      try {
        await s.start();
      } catch (err) {
        // One broken source must not stop the others (or the delivery of what is already stored).
        this.log.error({ err, source: s.id }, 'source failed to start; the others keep running');
      }
    }
    if (this.sources.length === 0) this.log.warn('no sources configured: only batches already in the store are delivered');
    await this.observability.start(this.state);
    this.writeSnapshot();
    this.snapshotTimer = setInterval(() => this.writeSnapshot(), STATUS_SNAPSHOT_MS);
    this.prune();
    this.pruneTimer = setInterval(() => this.prune(), PRUNE_INTERVAL_MS);
    this.log.info(
      { device: this.identity.deviceId, boot: this.bootCounter, sources: this.sources.map((s) => s.id), uplink: this.loaded.config.uplink?.url ?? null },
      'agent running',
    );
  }

  /**
   * Stops accepting, commits what was accepted, cuts the last batch, gives the uplink up to
   * `drainMs` to deliver it (what is left is delivered at the next start), then closes the store.
   */
  async stop(drainMs = 2000): Promise<void> {
    if (this.snapshotTimer) clearInterval(this.snapshotTimer);
    if (this.pruneTimer) clearInterval(this.pruneTimer);
    await Promise.allSettled(this.sources.map((s) => s.stop()));
    await this.observability.stop();
    this.writer.close();
    this.batcher.stop();
    this.batcher.cutDue(true);
    await this.forwarder?.drain(drainMs);
    await this.forwarder?.stop();
    this.writeSnapshot(false);
    this.db.close();
    this.releaseLock();
    this.log.info('agent stopped');
  }

  snapshot(): AgentSnapshot {
    return {
      pid: process.pid,
      started_at: this.startedAt,
      updated_at: Date.now(),
      boot: this.bootCounter,
      clock_synced: this.clock.isSynced(),
      sources: Object.fromEntries(this.sources.map((s) => [s.id, s.health()])),
    };
  }

  private prune(): void {
    try {
      const r = pruneDelivered(this.db, this.loaded.config.store.retain_delivered_hours * 3_600_000);
      if (r.batches > 0) this.log.info({ batches: r.batches, readings: r.readings }, 'pruned delivered data past retention');
    } catch (err) {
      this.log.warn({ err }, 'pruning delivered data failed; will retry');
    }
  }

  /** `edge-agent status` runs in another process: it reads this from the store. */
  private writeSnapshot(running = true): void {
    try {
      setMeta(this.db, 'agent_snapshot', JSON.stringify({ ...this.snapshot(), running }));
    } catch (err) {
      this.log.warn({ err }, 'could not write the status snapshot');
    }
  }
}

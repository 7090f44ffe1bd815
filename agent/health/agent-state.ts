import { statSync } from 'node:fs';
import { readStoreWrites, type StoreWrites } from '../store/write-meter.js';
import type { ClockReading, ClockStatus } from '../clock/clock-status.js';
import type { Source } from '../sources/source.js';
import type { BatchStore } from '../store/batch-store.js';
import type { Db } from '../store/database.js';
import { HealthQueries, type PendingBatchHead } from '../store/health-queries.js';
import { getMeta, setMeta } from '../store/meta.js';
import { readCounters } from '../store/reading-store.js';
import type { AgentStateView } from './metrics.js';

const PROBE_INTERVAL_MS = 5000;

export interface UplinkView {
  url: string;
  consecutiveFailures(): number;
  /** Set while the last receipt came signed by another key than uplink.receiver_key (both as did:key). */
  keyMismatch?(): { receiver: string; configured: string } | undefined;
}

/**
 * What the health checks, the metrics and the status page read about a running agent: the
 * store (same connection as the agent, so reads see every commit) and the live components.
 */
export class AgentState implements AgentStateView {
  private readonly queries: HealthQueries;

  constructor(
    readonly db: Db,
    private readonly batches: BatchStore,
    private readonly sourceList: readonly Source[],
    private readonly clock: ClockStatus,
    readonly dbPath: string,
    readonly uplinkView: UplinkView | undefined,
    /** storeMaxBytes: store.max_bytes, 0 = no budget; maxPendingBatches: batch.max_pending when there is an uplink. */
    readonly info: { deviceId: string; boot: number; startedAt: number; batchMaxAgeMs: number; storeMaxBytes?: number; maxPendingBatches?: number },
  ) {
    this.queries = new HealthQueries(db);
  }

  /**
   * The inference stage, undefined while none runs: operator warnings (a binding that matched no
   * sensor) and bindings disabled because their model could not be trusted or loaded. Set by the agent.
   */
  inference: (() => { warnings: string[]; disabled: Record<string, { model: string; reason: string }> } | undefined) | undefined;
  /** What the last config reload left to say (restart needed for ..., a refused file); set by the agent. */
  configNotice: (() => string | undefined) | undefined;
  /** Sources whose start threw, with the error (the agent runs on without them). */
  readonly startErrors = new Map<string, string>();
  private readonly seenConnected = new Set<string>();

  batchCounts(): Record<string, number> {
    return this.batches.countsByState();
  }

  oldestPending(): PendingBatchHead | undefined {
    return this.queries.oldestPending();
  }

  oldestPendingCreatedAt(): number | null {
    return this.oldestPending()?.created_at ?? null;
  }

  unbatched(): { count: number; oldestReceivedAt: number | null } {
    return this.batches.unbatchedSummary();
  }

  /**
   * Like `unbatched` but bounded: while the uplink is down readings may pile up unbatched by the
   * million (batch.max_pending), and a health probe must not count them all.
   */
  unbatchedUpTo(cap: number): { count: number; more: boolean; oldestReceivedAt: number | null } {
    const count = this.queries.countUnbatchedUpTo(cap + 1);
    const oldest = this.queries.oldestUnbatchedReceivedAt();
    return { count: Math.min(count, cap), more: count > cap, oldestReceivedAt: oldest };
  }

  /** Readings dropped under the budget that no batch has carried yet, and since when (ms). */
  unreportedDrops(): { readings: number; sensors: number; since: number | null } {
    return this.batches.unreportedDrops();
  }

  /** Bytes written to storage (lifetime counter) and the projected GB/day (flash wear, issue 13). */
  storeWrites(): StoreWrites {
    return readStoreWrites(this.db);
  }

  storeBytes(): number {
    let total = 0;
    for (const suffix of ['', '-wal']) {
      try {
        total += statSync(this.dbPath + suffix).size;
      } catch {
        // no WAL file right after a checkpoint: it adds nothing
      }
    }
    return total;
  }

  counters(): { name: string; label: string; value: number }[] {
    return readCounters(this.db);
  }

  sources(): { id: string; type: string; connected: boolean; endpoint: string; lastError?: string; lastMessageAt?: number; counters?: Record<string, number>; lossAt?: number; loss?: string; startError?: string }[] {
    return this.sourceList.map((s) => {
      const h = s.health();
      if (h.connected) this.seenConnected.add(s.id);
      // Its start threw, or it has not once been seen taking input (sampled by every check and
      // the 5 s status snapshot): both are a source that did not start.
      const startError = this.startErrors.get(s.id) ?? (this.seenConnected.has(s.id) ? undefined : `not connected once since the agent started${h.lastError ? ` (last error: ${h.lastError})` : ''}`);
      return { id: s.id, ...h, ...(startError !== undefined && !h.connected ? { startError } : {}) };
    });
  }

  clockSynced(): boolean {
    return this.clock.isSynced();
  }

  clockReading(): ClockReading {
    return this.clock.reading();
  }

  /** The last wall-clock step seen while running, if any (clock/clock-step.ts). */
  clockStep(): { stepMs: number; agoMs: number; trusted: boolean } | undefined {
    const s = this.clock.steps?.lastStep();
    return s ? { stepMs: s.stepMs, agoMs: s.agoMs, trusted: this.clock.steps!.trusted() } : undefined;
  }

  uplink():
    | { lastSuccessAt: number | null; consecutiveFailures: number; lastError: string | null; lastErrorAt: number | null; keyMismatch?: { receiver: string; configured: string } }
    | undefined {
    if (!this.uplinkView) return undefined;
    const num = (k: string) => {
      const v = getMeta(this.db, k);
      return v === undefined ? null : Number(v);
    };
    const keyMismatch = this.uplinkView.keyMismatch?.();
    return {
      ...(keyMismatch ? { keyMismatch } : {}),
      lastSuccessAt: num('uplink_last_success_at'),
      consecutiveFailures: this.uplinkView.consecutiveFailures(),
      lastError: getMeta(this.db, 'uplink_last_error') ?? null,
      lastErrorAt: num('uplink_last_error_at'),
    };
  }

  private lastProbe: { at: number; error?: unknown } | undefined;

  /**
   * A real write (one small transaction): a full disk, a read-only remount or a lost file show
   * here. At most one every PROBE_INTERVAL_MS: the status page polls, and each write is an fsync
   * on an SD card.
   */
  probeStoreWrite(now = Date.now()): void {
    if (!this.lastProbe || Math.abs(now - this.lastProbe.at) >= PROBE_INTERVAL_MS) {
      try {
        setMeta(this.db, 'health_probe_at', String(now));
        this.lastProbe = { at: now };
      } catch (err) {
        this.lastProbe = { at: now, error: err };
      }
    }
    if (this.lastProbe.error !== undefined) throw this.lastProbe.error;
  }
}

import type { Identity } from '../identity/keys.js';
import type { Logger } from '../log.js';
import { isStoreFull, RepeatedLog } from '../util/repeated-log.js';
import { PENDING_BYTES_PER_ENVELOPE_BYTE } from '../store/budget-shares.js';
import type { BatchStore } from '../store/batch-store.js';
import type { AnyBatch } from '../identity/batch-any.js';
import { batchEncoder } from './batch-encoder.js';
import { ReadingLeafCache } from './leaf-cache.js';
import type { StoredReading } from '../types.js';

export interface BatcherOptions {
  maxReadings: number;
  maxAgeMs: number;
  bootCounter: number;
  clockSynced: () => boolean;
  /** No batch is cut while this many wait for the uplink (batch.max_pending); Infinity without an uplink. */
  maxPending?: number;
  /**
   * ... nor while pending batches take this many bytes of store (3 x their envelopes, store/budget-shares.ts):
   * long sensor ids cannot make max_pending batches pass their share of the disk budget.
   */
  maxPendingBytes?: number;
  /** Cut drops-only batches when no reading batch can carry the drops (with an uplink). */
  reportDrops?: boolean;
  /** A cut failed with SQLITE_FULL: the store frees space (ballast, oldest unbatched readings) for the next tick. */
  onStoreFull?: () => void;
  /** batch.format (docs/wire-format.md §12.12). */
  format?: 'auto' | 3;
  /** uplink.encrypt_to as a public key: seal every batch to it (§12.6). */
  sealTo?: Uint8Array;
}

/**
 * Cuts a batch when `maxReadings` wait, or when the oldest waiting reading has waited
 * `maxAgeMs`. Age is measured on the monotonic clock from when the reading was committed,
 * so a wall-clock jump neither floods nor starves the uplink.
 */
export class Batcher {
  private waiting = 0;
  private oldestAtMono: number | undefined;
  private timer: NodeJS.Timeout | undefined;
  /** Monotonic time the current holding episode (batch.max_pending reached) began. */
  private holdingSince: number | undefined;
  private lastEventCheck = 0;
  /** Monotonic time of the last noteCommitted: commits are flowing while it is recent (onTick). */
  private lastNoteAt = -Infinity;
  private readonly listeners: ((b: AnyBatch) => void)[] = [];
  private readonly cutFailed: RepeatedLog;
  /** Leaves of the readings committed since the last cut: a cut of them reads only their ids (leaf-cache.ts). */
  private readonly leaves = new ReadingLeafCache();

  constructor(
    private readonly store: BatchStore,
    private readonly identity: Identity,
    private readonly opts: BatcherOptions,
    private readonly log: Logger,
  ) {
    this.cutFailed = new RepeatedLog(log, 'error', 'cutting a batch failed; will retry on the next tick');
  }

  onBatch(listener: (b: AnyBatch) => void): void {
    this.listeners.push(listener);
  }

  start(): void {
    // Readings left unbatched by the previous run count as old: they have waited at least that long.
    const left = this.store.unbatchedSummary().count + this.store.unbatchedVerdicts();
    if (left > 0) {
      this.waiting = left;
      this.oldestAtMono = performance.now() - this.opts.maxAgeMs;
    }
    this.startTimer();
    this.cutDue();
  }

  private startTimer(): void {
    const tick = Math.max(10, Math.min(250, Math.floor(this.opts.maxAgeMs / 4)));
    this.timer = setInterval(() => this.onTick(tick), tick);
  }

  /**
   * While commits keep coming (one within the last tick), a batch that is due by age is cut by the
   * next commit's noteCommitted, which runs after that commit's acknowledgements went out (store
   * writer): cut here, at a random moment, it held up the acknowledgements of the group being
   * committed (5-17 ms a cut at 5,000 readings/s, issue 13). The tick still cuts when no commit
   * came in time, so a batch waits at most one tick longer than batch.max_age_ms.
   */
  private onTick(tick: number): void {
    const now = performance.now();
    const commitsFlowing = now - this.lastNoteAt < tick;
    if (commitsFlowing && !this.aged(now, tick) && this.holdingSince === undefined) return;
    this.cutDue();
  }

  /** batch.* changed by a config reload: the next cut uses the new limits (readings already waiting included). */
  setLimits(limits: Pick<BatcherOptions, 'maxReadings' | 'maxAgeMs' | 'maxPending' | 'maxPendingBytes' | 'format'>): void {
    Object.assign(this.opts, limits);
    if (limits.maxPendingBytes === undefined) delete this.opts.maxPendingBytes;
    if (this.timer) {
      clearInterval(this.timer);
      this.startTimer();
    }
    this.cutDue();
  }

  /**
   * Told the readings of each commit (GroupCommitWriter.onCommittedReadings, which runs before the
   * writer's count listeners, so before the noteCommitted that may cut them). While holding
   * (batch.max_pending), nothing is cached: those readings are cut from the store later anyway.
   */
  noteCommittedReadings(readings: readonly StoredReading[]): void {
    if (this.holdingSince === undefined) this.leaves.note(readings);
  }

  /** How many cuts of readings were served from the leaf cache, and how many read the rows (status, tests). */
  leafCacheStats(): { hits: number; misses: number; readings: number; bytes: number } {
    return { hits: this.leaves.hits, misses: this.leaves.misses, ...this.leaves.size() };
  }

  /** Told after each commit of readings (store writer) or verdicts (inference stage). */
  noteCommitted(accepted: number): void {
    const now = performance.now();
    this.lastNoteAt = now;
    if (this.waiting === 0) this.oldestAtMono = now;
    this.waiting += accepted;
    // While holding (batch.max_pending), the tick alone retries: not a store query per commit.
    if (this.waiting >= this.opts.maxReadings || (this.holdingSince === undefined && this.aged(now))) this.cutDue();
  }

  /** The oldest waiting reading has waited batch.max_age_ms (plus `slackMs`). */
  private aged(now: number, slackMs = 0): boolean {
    return this.oldestAtMono !== undefined && now - this.oldestAtMono >= this.opts.maxAgeMs + slackMs;
  }

  /** Cuts every batch that is due; `all` cuts the remainder too (shutdown). */
  cutDue(all = false): void {
    this.noteWaitingEvents();
    const aged = this.aged(performance.now());
    try {
      let pending: number | undefined;
      if (all || aged || this.waiting >= this.opts.maxReadings) pending = this.cutReadings(all, aged);
      this.cutDropsWhenStuck(pending);
      this.cutFailed.recovered();
    } catch (err) {
      this.cutFailed.report(err);
      if (isStoreFull(err)) this.opts.onStoreFull?.();
    }
  }

  /** Cuts reading (and verdict) batches up to batch.max_pending; returns how many are pending after. */
  private cutReadings(all: boolean, aged: boolean): number {
    const maxPending = this.opts.maxPending ?? Infinity;
    const maxBytes = this.opts.maxPendingBytes ?? Infinity;
    let pending = maxPending === Infinity ? 0 : this.store.pendingCount();
    let bytes = maxBytes === Infinity ? 0 : this.store.pendingEnvelopeBytes() * PENDING_BYTES_PER_ENVELOPE_BYTE;
    for (;;) {
      if (pending >= maxPending || bytes >= maxBytes) {
        // Readings stay unbatched (durable, acknowledged); the disk budget may drop the oldest of them.
        // One warning per episode: it ends when every held reading is in a batch again.
        if (!this.holdingSince) {
          this.holdingSince = performance.now();
          this.log.warn({ pending, max_pending: maxPending, pending_bytes: bytes, max_pending_bytes: maxBytes }, 'batch.max_pending batches wait for the uplink: holding readings unbatched');
        }
        return pending;
      }
      const hitsBefore = this.leaves.hits;
      const batch = this.store.cutBatch(this.opts.maxReadings, batchEncoder(this.identity, this.cutOptions(), this.leaves));
      if (!batch) {
        this.waiting = 0;
        // Readings held back for their sensor's attestation (PROTOCOL.md §3.9) stay due: the next tick tries again.
        if (this.store.unbatchedSummary().count === 0) this.oldestAtMono = undefined;
        this.endHolding(pending);
        return pending;
      }
      pending++;
      bytes += batch.envelope.length * PENDING_BYTES_PER_ENVELOPE_BYTE;
      const verdicts = batch.body.vd?.length ?? 0;
      this.waiting = Math.max(0, this.waiting - batch.body.n - verdicts - batch.events.length);
      this.log.debug({ seq: batch.body.seq, readings: batch.body.n, verdicts, from_leaf_cache: this.leaves.hits > hitsBefore }, 'batch cut');
      for (const l of this.listeners) l(batch);
      if (!all && !aged && this.waiting < this.opts.maxReadings) {
        if (this.waiting === 0) this.oldestAtMono = undefined;
        this.endHolding(pending);
        return pending;
      }
    }
  }

  private endHolding(pending: number): void {
    if (!this.holdingSince) return;
    this.log.info({ pending, held_s: Math.round((performance.now() - this.holdingSince) / 1000) }, 'uplink caught up: every held reading is in a batch again');
    this.holdingSince = undefined;
  }

  /**
   * Drops must reach the network even when no reading batch can be cut (all readings dropped,
   * or batch.max_pending reached): once the oldest unreported drop has waited batch.max_age_ms,
   * a batch of drops alone is cut (wire-format.md §4.5). It may pass batch.max_pending by one,
   * never more: while it waits, newer drops wait for it, so pending never exceeds max_pending + 1.
   */
  private cutDropsWhenStuck(pendingKnown: number | undefined): void {
    if (!this.opts.reportDrops) return;
    const drops = this.store.unreportedDrops();
    if (drops.readings === 0 || drops.since === null) return;
    // Wall clock from the store (it survives restarts); a clock stepped back counts as due.
    const waited = Date.now() - drops.since;
    if (waited >= 0 && waited < this.opts.maxAgeMs) return;
    const maxPending = this.opts.maxPending ?? Infinity;
    const pending = pendingKnown ?? (maxPending === Infinity ? 0 : this.store.pendingCount());
    const readingBatchComing = this.waiting > 0 && pending < maxPending;
    if (readingBatchComing || pending > maxPending) return;
    // No readings or verdicts: the drops (and waiting events) alone.
    const batch = this.store.cutBatch(0, batchEncoder(this.identity, this.cutOptions()));
    if (!batch) return;
    this.log.info({ seq: batch.body.seq, dropped: drops.readings, sensors: drops.sensors, pending: pending + 1 }, 'cut a batch of drops alone: no reading batch could carry them');
    for (const l of this.listeners) l(batch);
  }

  private cutOptions() {
    return {
      bootCounter: this.opts.bootCounter,
      clockSynced: this.opts.clockSynced(),
      now: Date.now(),
      ...(this.opts.format ? { format: this.opts.format } : {}),
      ...(this.opts.sealTo ? { sealTo: this.opts.sealTo } : {}),
    };
  }

  /**
   * Events are recorded by any stage (a clock step, a lost session), not through noteCommitted; a
   * quiet agent looks for them once per max_age_ms, so an event waits at most about twice that.
   */
  private noteWaitingEvents(): void {
    if (this.waiting > 0) return;
    const now = performance.now();
    if (now - this.lastEventCheck < this.opts.maxAgeMs) return;
    this.lastEventCheck = now;
    const events = this.store.unbatchedEvents();
    if (events > 0) {
      this.waiting = events;
      this.oldestAtMono = now - this.opts.maxAgeMs;
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}

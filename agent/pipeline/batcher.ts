import type { Identity } from '../identity/keys.js';
import type { Logger } from '../log.js';
import type { BatchStore } from '../store/batch-store.js';
import type { AnyBatch } from '../identity/batch-any.js';
import { batchEncoder } from './batch-encoder.js';

export interface BatcherOptions {
  maxReadings: number;
  maxAgeMs: number;
  bootCounter: number;
  clockSynced: () => boolean;
  /** No batch is cut while this many wait for the uplink (batch.max_pending); Infinity without an uplink. */
  maxPending?: number;
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
  private holding = false;
  private lastEventCheck = 0;
  private readonly listeners: ((b: AnyBatch) => void)[] = [];

  constructor(
    private readonly store: BatchStore,
    private readonly identity: Identity,
    private readonly opts: BatcherOptions,
    private readonly log: Logger,
  ) {}

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
    const tick = Math.max(10, Math.min(250, Math.floor(this.opts.maxAgeMs / 4)));
    this.timer = setInterval(() => this.cutDue(), tick);
    this.cutDue();
  }

  /** Told after each commit of readings (store writer) or verdicts (inference stage). */
  noteCommitted(accepted: number): void {
    if (this.waiting === 0) this.oldestAtMono = performance.now();
    this.waiting += accepted;
    if (this.waiting >= this.opts.maxReadings) this.cutDue();
  }

  /** Cuts every batch that is due; `all` cuts the remainder too (shutdown). */
  cutDue(all = false): void {
    this.noteWaitingEvents();
    const aged = this.oldestAtMono !== undefined && performance.now() - this.oldestAtMono >= this.opts.maxAgeMs;
    if (!all && !aged && this.waiting < this.opts.maxReadings) return;
    const maxPending = this.opts.maxPending ?? Infinity;
    try {
      let pending = maxPending === Infinity ? 0 : this.store.pendingCount();
      for (;;) {
        if (pending >= maxPending) {
          // Readings stay unbatched (durable, acknowledged); the disk budget may drop the oldest of them.
          if (!this.holding) this.log.warn({ pending, max_pending: maxPending }, 'batch.max_pending batches wait for the uplink: holding readings unbatched');
          this.holding = true;
          break;
        }
        if (this.holding) this.log.info({ pending }, 'uplink caught up: cutting batches again');
        this.holding = false;
        const batch = this.store.cutBatch(
          this.opts.maxReadings,
          batchEncoder(this.identity, {
            bootCounter: this.opts.bootCounter,
            clockSynced: this.opts.clockSynced(),
            now: Date.now(),
            ...(this.opts.format ? { format: this.opts.format } : {}),
            ...(this.opts.sealTo ? { sealTo: this.opts.sealTo } : {}),
          }),
        );
        if (!batch) {
          this.waiting = 0;
          this.oldestAtMono = undefined;
          break;
        }
        pending++;
        const verdicts = batch.body.vd?.length ?? 0;
        this.waiting = Math.max(0, this.waiting - batch.body.n - verdicts - batch.events.length);
        this.log.debug({ seq: batch.body.seq, readings: batch.body.n, verdicts }, 'batch cut');
        for (const l of this.listeners) l(batch);
        if (!all && !aged && this.waiting < this.opts.maxReadings) {
          if (this.waiting === 0) this.oldestAtMono = undefined;
          break;
        }
      }
    } catch (err) {
      this.log.error({ err }, 'cutting a batch failed; will retry on the next tick');
    }
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

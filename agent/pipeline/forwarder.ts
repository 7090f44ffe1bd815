import type { Logger } from '../log.js';
import { isStoreFull, RepeatedLog } from '../util/repeated-log.js';
import type { BatchStore } from '../store/batch-store.js';
import type { Db } from '../store/database.js';
import type { Uplink } from '../uplink/uplink.js';
import { backoffDelay } from '../util/backoff.js';
import { WakeableSleep } from '../util/wakeable-sleep.js';

export interface ForwarderOptions {
  retryInitialMs: number;
  retryMaxMs: number;
  /** 0: no limit. */
  maxBatchesPerS: number;
  device: Uint8Array;
  /** Metrics and backlog progress (agent/health) listen here. */
  observer?: DeliveryObserver;
  /** A store write failed with SQLITE_FULL: the store frees space before the retry. */
  onStoreFull?: () => void;
}

export interface DeliveryObserver {
  /** At start and when the uplink recovers: a backlog may be waiting. */
  backlogMayExist(): void;
  /** One delivery attempt of batch `seq` ended after `seconds`. */
  attempt(seq: number, seconds: number, outcome: 'delivered' | 'failed' | 'rejected'): void;
}

/**
 * Delivers pending batches strictly in sequence order, one at a time, and marks each
 * delivered only on the uplink's acknowledgement. State lives in the store, so after a
 * restart it resumes at the first batch not acknowledged.
 */
export class Forwarder {
  private readonly abort = new AbortController();
  private readonly idle = new WakeableSleep();
  private loop: Promise<void> | undefined;
  private failures = 0;
  /** The key that signed the last receipt refused for being from another receiver; cleared by a delivery. */
  private mismatchedKey: string | undefined;
  private readonly storeFailed: RepeatedLog;

  constructor(
    private readonly db: Db,
    private readonly batches: BatchStore,
    private readonly uplink: Uplink,
    private readonly opts: ForwarderOptions,
    private readonly log: Logger,
  ) {
    this.storeFailed = new RepeatedLog(log, 'error', 'uplink: the store could not record a delivery step; retrying (a batch delivered but not recorded is sent again, the receiver de-duplicates it)');
  }

  start(): void {
    this.loop = this.run();
  }

  /** Failed attempts since the last delivery (0 when the uplink is healthy). */
  get consecutiveFailures(): number {
    return this.failures;
  }

  /** Set while receipts come signed by another key than uplink.receiver_key (did:key of that key). */
  get receiverKeyMismatch(): string | undefined {
    return this.mismatchedKey;
  }

  /** uplink.retry_* and max_batches_per_s changed by a config reload: the next wait uses them. */
  setPacing(pacing: Pick<ForwarderOptions, 'retryInitialMs' | 'retryMaxMs' | 'maxBatchesPerS'>): void {
    Object.assign(this.opts, pacing);
  }

  /** A new batch is waiting. */
  wake(): void {
    if (this.failures === 0) this.idle.wake();
  }

  /** Waits until nothing is pending, the uplink is failing, or `timeoutMs` passed: a bounded last delivery at shutdown. */
  async drain(timeoutMs: number): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    this.wake();
    while (performance.now() < deadline && this.failures === 0 && this.batches.nextPending()) {
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  async stop(): Promise<void> {
    this.abort.abort();
    this.idle.wake();
    await this.loop;
  }

  private async run(): Promise<void> {
    const signal = this.abort.signal;
    this.notify(() => this.opts.observer?.backlogMayExist());
    let storeFailures = 0;
    while (!signal.aborted) {
      try {
        await this.step(signal);
        if (storeFailures > 0) this.storeFailed.recovered();
        storeFailures = 0;
      } catch (err) {
        // A full disk (SQLITE_FULL) or a store gone read-only: never an uncaught error, never a lost batch.
        storeFailures++;
        this.storeFailed.report(err);
        if (isStoreFull(err)) this.opts.onStoreFull?.();
        await new WakeableSleep().sleep(backoffDelay(storeFailures, this.opts.retryInitialMs, this.opts.retryMaxMs), signal);
      }
    }
  }


  /** One delivery attempt of the next pending batch, or an idle wait. */
  private async step(signal: AbortSignal): Promise<void> {
    const row = this.batches.nextPending();
    if (!row) {
      await this.idle.sleep(60_000, signal);
      return;
    }
    const t0 = performance.now();
    const outcome = await this.uplink.deliver(
      { seq: row.seq, hash: new Uint8Array(row.hash), device: this.opts.device, envelope: new Uint8Array(row.envelope) },
      signal,
    );
    if (signal.aborted) return;
    this.notify(() => this.opts.observer?.attempt(row.seq, (performance.now() - t0) / 1000, outcome.kind === 'retry' ? 'failed' : outcome.kind));
    const now = Date.now();
    if (outcome.kind === 'delivered') {
      this.batches.markDelivered(row.seq, now, outcome.receipt);
      const recovered = this.failures > 0;
      if (recovered) this.log.info({ seq: row.seq, after_failures: this.failures }, 'uplink recovered');
      this.failures = 0;
      this.mismatchedKey = undefined;
      if (recovered) this.notify(() => this.opts.observer?.backlogMayExist());
      if (this.opts.maxBatchesPerS > 0) await new WakeableSleep().sleep(1000 / this.opts.maxBatchesPerS, signal);
      return;
    }
    if (outcome.kind === 'rejected') {
      this.batches.markRejected(row.seq, outcome.error, now);
      this.log.error({ seq: row.seq, error: outcome.error }, 'receiver rejected batch; it is kept in the store and skipped');
      return;
    }
    this.failures++;
    this.mismatchedKey = outcome.receiverKeyMismatch;
    this.batches.markAttemptFailed(row.seq, outcome.error, now);
    // A receiver that says when to come back (429/503 Retry-After) is obeyed, never undercut.
    const delay = Math.max(backoffDelay(this.failures, this.opts.retryInitialMs, this.opts.retryMaxMs), outcome.retryAfterMs ?? 0);
    this.log[this.failures === 1 ? 'warn' : 'debug']({ seq: row.seq, error: outcome.error, retry_in_ms: delay, failures: this.failures }, 'batch delivery failed');
    await new WakeableSleep().sleep(delay, signal);
  }

  /** Observers only watch: their failure must never stop deliveries. */
  private notify(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.log.warn({ err }, 'delivery observer failed');
    }
  }
}

import { statSync } from 'node:fs';
import type { Logger } from '../log.js';
import { isStoreFull } from '../util/repeated-log.js';
import { errorMessage } from '../errors.js';
import { pendingEnvelopeBytes } from './batch-contents.js';
import type { Db } from './database.js';
import { EVENT_ROW_OVERHEAD_BYTES, EVENTS_SHARE, GUARD_ROW_BYTES, PENDING_BYTES_PER_ENVELOPE_BYTE, walLimitFor } from './budget-shares.js';
import { capCounters } from './counter-cap.js';
import { DiskReserve } from './disk-reserve.js';
import { capCursors, capDropsUnreported } from './keyed-tables.js';
import type { RedeliveryGuardPruner } from './redelivery-guard.js';
import { pruneDelivered } from './retention.js';
import { WalCheckpoints } from './wal-checkpoint.js';

/** What the store occupies on disk, and how much of the main file holds live data. */
export interface StoreUsage {
  /** Main database file: page_count * page_size. */
  fileBytes: number;
  walBytes: number;
  /** Pages holding data (page_count - freelist_count) * page_size: the file never grows past this while free pages remain. */
  usedBytes: number;
}

export interface EnforceResult {
  /** Unbatched readings deleted, per sensor. */
  dropped: Map<string, number>;
  /** Unbatched verdicts deleted (after every unbatched reading), per key. */
  droppedVerdicts: Map<string, number>;
  /** Delivered batches deleted before their retention ran out. */
  prunedBatches: number;
}

const CHUNK_MIN = 64;
/** On a full disk the WAL has only the released ballast to grow into: smaller deletes, checkpointed between. */
const FULL_DISK_CHUNK_MAX = 1000;
/** Delivered batches deleted per transaction on a full disk: one batch's rows and envelope fit in the WAL room left. */
const FULL_DISK_PRUNE_BATCHES = 1;
/** The share of the ballast kept back from data on a full disk: the room a WAL checkpoint needs to grow the file. */
const CHECKPOINT_SLICE_SHARE = 0.25;
/** Pages given back to the file system per step when making room for the ballast (256 KiB of 4 KiB pages). */
const VACUUM_STEP_PAGES = 64;
/** The ballast is looked after at most this often outside a full-disk episode (it costs a stat, maybe a checkpoint). */
const RESERVE_CHECK_MS = 1000;
const CHUNK_MAX = 5000;
/** Drops stop below this share of the data allowance, so the next commits do not trigger it again at once. */
const LOW_WATER = 0.85;

/**
 * The store's disk budget (`store.max_bytes`, README "Disk budget"). Footprint = main file + WAL.
 * The WAL is held to a small allowance (journal_size_limit, wal_autocheckpoint); the rest is for
 * data. When live data passes its allowance, space is freed in this order, one transaction per
 * chunk, re-measuring after each:
 *   1. delivered batches and their readings (the network has them), newest batch kept for the chain;
 *   2. the oldest readings not yet in a batch, counted per sensor (`dropped` counter) and queued
 *      for the next batch's `drops` field;
 *   3. then the oldest unbatched verdicts that are not alert changes, and alert changes last
 *      (counter `dropped_verdicts`, per key; not yet carried in batches).
 * Readings inside signed batches waiting for delivery are never dropped (that would break the
 * chain): `batch.max_pending` bounds them instead. Freed pages are reused by the next inserts, so
 * the file stops growing; on stores created with auto_vacuum=INCREMENTAL the file is also
 * shrunk when it is larger than the allowance (e.g. after the budget was lowered).
 */
export class StoreBudget {
  readonly walLimitBytes: number;
  private readonly pageSize: number;
  private readonly incremental: boolean;
  private readonly q;
  private lastStuckLogAt = -Infinity;
  private reserveCheckedAt = -Infinity;
  readonly reserve: DiskReserve;
  private readonly wal: WalCheckpoints;
  /** Ballast bytes given only to a checkpoint that failed with SQLITE_FULL, never to data (see makeRoom). */
  private readonly checkpointSlice: number;

  constructor(
    private readonly db: Db,
    private readonly path: string,
    readonly maxBytes: number,
    private readonly log: Logger,
    reserve?: DiskReserve,
    /** Prunes the MQTT redelivery guard to its share (store/redelivery-guard.ts). */
    private readonly guard?: RedeliveryGuardPruner,
  ) {
    this.reserve = reserve ?? new DiskReserve(path, log);
    this.wal = new WalCheckpoints(db, this.reserve, log);
    this.checkpointSlice = Math.floor((this.reserve.size * CHECKPOINT_SLICE_SHARE) / 4096) * 4096;
    this.pageSize = db.pragma('page_size', { simple: true }) as number;
    this.incremental = (db.pragma('auto_vacuum', { simple: true }) as number) === 2;
    this.walLimitBytes = maxBytes > 0 ? walLimitFor(maxBytes) : 0;
    // After a checkpoint the WAL is cut back to this size; it is checkpointed at about half of it.
    // Without a budget the WAL is still kept under the disk reserve, so that on a full disk the
    // reserve covers what a checkpoint must add to the database file.
    const walLimit = maxBytes > 0 ? Math.min(this.walLimitBytes, this.reserve.size) : this.reserve.size;
    db.pragma(`journal_size_limit = ${walLimit}`);
    db.pragma(`wal_autocheckpoint = ${Math.max(8, Math.floor(walLimit / this.pageSize / 2))}`);
    this.reserve.restore(this.reserve.size);
    this.q = {
      pageCount: db.prepare('PRAGMA page_count').pluck(),
      freelist: db.prepare('PRAGMA freelist_count').pluck(),
      oldestBySensor: db.prepare<[number], { sensor: string; n: number }>(
        'SELECT sensor, count(*) AS n FROM (SELECT sensor FROM readings WHERE batch_seq IS NULL ORDER BY id LIMIT ?) GROUP BY sensor',
      ),
      deleteOldest: db.prepare('DELETE FROM readings WHERE id IN (SELECT id FROM readings WHERE batch_seq IS NULL ORDER BY id LIMIT ?)'),
      unbatched: db.prepare('SELECT count(*) FROM readings WHERE batch_seq IS NULL').pluck(),
      // Verdicts: plain ones (changed = 0) before alert changes (changed = 1), oldest first.
      unbatchedVerdicts: db.prepare('SELECT count(*) FROM verdicts WHERE batch_seq IS NULL AND changed = ?').pluck(),
      oldestVerdictsByKey: db.prepare<[number, number], { key: string; n: number }>(
        'SELECT key, count(*) AS n FROM (SELECT key FROM verdicts WHERE batch_seq IS NULL AND changed = ? ORDER BY id LIMIT ?) GROUP BY key',
      ),
      deleteOldestVerdicts: db.prepare('DELETE FROM verdicts WHERE id IN (SELECT id FROM verdicts WHERE batch_seq IS NULL AND changed = ? ORDER BY id LIMIT ?)'),
      countDroppedVerdicts: db.prepare(
        "INSERT INTO counters (name, label, value) VALUES ('dropped_verdicts', ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
      ),
      countDropped: db.prepare(
        "INSERT INTO counters (name, label, value) VALUES ('dropped', ?, ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
      ),
      queueDrop: db.prepare('INSERT INTO drops_unreported (sensor, count) VALUES (?, ?) ON CONFLICT (sensor) DO UPDATE SET count = count + excluded.count'),
      eventBytes: db.prepare(
        `SELECT count(*) AS n, coalesce(sum(length(kind) + length(key) + coalesce(length(detail), 0) + ${EVENT_ROW_OVERHEAD_BYTES}), 0) AS bytes FROM events WHERE batch_seq IS NULL`,
      ),
      dropOldestEvents: db.prepare('DELETE FROM events WHERE id IN (SELECT id FROM events WHERE batch_seq IS NULL ORDER BY id LIMIT ?)'),
      countDroppedEvents: db.prepare(
        "INSERT INTO counters (name, label, value) VALUES ('dropped_events', '', ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
      ),
      // When the oldest drop not yet carried upstream happened: status and /healthz say for how long.
      dropsSince: db.prepare("INSERT INTO meta (key, value) VALUES ('drops_unreported_since', ?) ON CONFLICT (key) DO NOTHING"),
    };
  }

  usage(): StoreUsage {
    const pages = this.q.pageCount.get() as number;
    const free = this.q.freelist.get() as number;
    let walBytes = 0;
    try {
      walBytes = statSync(`${this.path}-wal`).size;
    } catch {
      // no WAL file (not yet written, or truncated away)
    }
    return { fileBytes: pages * this.pageSize, walBytes, usedBytes: (pages - free) * this.pageSize };
  }

  /** The bytes live data may occupy in the main file: the WAL may reach twice its limit before it is truncated. */
  get dataAllowance(): number {
    return this.maxBytes - 2 * this.walLimitBytes;
  }

  /**
   * Writes the ballast back once the disk has room for it and as much again for the WAL. On a
   * store that can shrink (auto_vacuum=INCREMENTAL), free pages left by drops or pruning are
   * given back to the file system first: without that a full disk would never have room again.
   */
  restoreReserve(): boolean {
    const missing = this.reserve.size - this.reserve.held();
    if (missing <= 0) return true;
    const margin = this.reserve.size;
    const need = missing + margin;
    // In small steps: moving pages writes them to the WAL, which has only the free space to grow into;
    // each step's checkpoint cuts the file and the WAL, so the next step has more room than the last.
    for (let step = 0; this.incremental && step < 256 && this.reserve.freeBytes() < need; step++) {
      const free = this.q.freelist.get() as number;
      if (free === 0) break;
      const pages = Math.min(free, VACUUM_STEP_PAGES, Math.ceil((need - this.reserve.freeBytes()) / this.pageSize));
      try {
        this.db.pragma(`incremental_vacuum(${pages})`);
      } catch (err) {
        if (!isStoreFull(err)) throw err;
        this.wal.truncate(2000);
        break;
      }
      if (this.wal.truncate(2000) !== 'done') break;
    }
    if (this.reserve.restore(margin)) return true;
    // No room for all of it yet: at least the checkpoint slice, so the next full disk can still
    // checkpoint (without it a WAL that grew the file past the disk's end can never be reset).
    this.reserve.restore(this.checkpointSlice, this.checkpointSlice);
    return false;
  }

  /** Checks the budget (after commits and on a timer) and frees space when it is exceeded. */
  enforce(): EnforceResult {
    const result: EnforceResult = { dropped: new Map(), droppedVerdicts: new Map(), prunedBatches: 0 };
    if (performance.now() - this.reserveCheckedAt >= RESERVE_CHECK_MS) {
      this.reserveCheckedAt = performance.now();
      this.restoreReserve();
      // The tables that grow with the number of messages and sensor ids are held to their shares
      // (store/budget-shares.ts), whatever the budget: without that the guard alone filled a 4 MB one.
      this.housekeeping();
    }
    if (this.maxBytes <= 0) return result;
    let u = this.usage();
    if (u.walBytes > this.walLimitBytes) {
      // PASSIVE never waits for readers (a `status` beside the agent); the next write after a
      // complete checkpoint restarts the WAL and cuts it to journal_size_limit.
      this.db.pragma('wal_checkpoint(PASSIVE)');
      u = this.usage();
    }
    if (u.walBytes > 2 * this.walLimitBytes) {
      // Readers kept the WAL from being reset: wait for them briefly (not the usual 5 s) and
      // truncate it. If a reader still holds on, the next check tries again.
      this.db.pragma('busy_timeout = 50');
      try {
        this.db.pragma('wal_checkpoint(TRUNCATE)');
      } finally {
        this.db.pragma('busy_timeout = 5000');
      }
      u = this.usage();
    }
    if (u.usedBytes > this.dataAllowance) this.free(this.dataAllowance * LOW_WATER, result);
    if (this.incremental && this.usage().fileBytes > this.dataAllowance) this.shrinkFile();
    return result;
  }

  /**
   * The disk is full (SQLITE_FULL) whatever the budget says: give the ballast back (all but the
   * checkpoint slice), free live data (every delivered batch but the newest, then the oldest
   * unbatched readings) in small checkpointed steps, give enough of the freed pages back to the
   * file system for the ballast and the WAL, and write the ballast again, so the next episode
   * finds it in place. The rest of the freed pages stay in the database file for the retried
   * commit. A SQLITE_FULL inside ends the pass, it is not thrown: the next one tries again.
   */
  makeRoom(): EnforceResult {
    const result: EnforceResult = { dropped: new Map(), droppedVerdicts: new Map(), prunedBatches: 0 };
    // All of the ballast but the checkpoint slice: a checkpoint is the one write that cannot be made
    // smaller, and a WAL that can never be checkpointed again is a store that never writes again.
    this.reserve.release(this.reserve.held() - this.checkpointSlice);
    this.wal.onFullDisk();
    // Delivered batches go first on a full disk, whatever their retention: the network has them.
    // One per transaction, checkpointed between, so each DELETE's WAL fits in the room there is.
    result.prunedBatches = this.pruneDeliveredInSteps();
    const u = this.usage();
    // Room wanted after the episode: the ballast, as much again for the WAL, and a tenth of the live
    // data for new readings, counting what the file system and the file's free pages already hold.
    // A SQLITE_FULL from a WAL that could not grow, with free pages left, drops nothing.
    const want = 2 * this.reserve.size + 0.1 * u.usedBytes;
    // The file can grow into free disk space only up to SQLite's own page limit (max_page_count).
    const growth = Math.min(this.reserve.freeBytes(), ((this.db.pragma('max_page_count', { simple: true }) as number) * this.pageSize) - u.fileBytes);
    const have = Math.max(0, growth) + (u.fileBytes - u.usedBytes);
    const target = Math.min(Math.max(u.usedBytes * 0.5, u.usedBytes - Math.max(0, want - have)), this.maxBytes > 0 ? this.dataAllowance * LOW_WATER : Infinity);
    this.free(Math.max(0, target), result, true);
    // Move the WAL into the database file and cut it; waiting up to 2 s for readers (a `status`) is worth it here.
    this.wal.onFullDisk();
    this.restoreReserve();
    return result;
  }

  /** Deletes every delivered batch but the newest, a few per transaction; stops when the disk has no room even for that. */
  private pruneDeliveredInSteps(): number {
    let pruned = 0;
    for (let failures = 0; failures < 2; ) {
      try {
        const n = pruneDelivered(this.db, 0, Date.now(), FULL_DISK_PRUNE_BATCHES).batches;
        if (n === 0) break;
        pruned += n;
        failures = 0;
      } catch (err) {
        if (!isStoreFull(err)) throw err;
        failures++;
        this.wal.onFullDisk();
        continue;
      }
      this.wal.passive();
    }
    return pruned;
  }

  /** Redelivery guard, counters, events, stream positions and unreported drops to their shares; returns the rows deleted or folded. */
  housekeeping(): number {
    return (this.guard?.prune() ?? 0) + capCounters(this.db) + this.capEvents() + capCursors(this.db) + capDropsUnreported(this.db);
  }

  /** Events waiting for a batch held to their share of the budget: the oldest beyond it go, counted as dropped_events. */
  private capEvents(): number {
    if (this.maxBytes <= 0) return 0;
    const share = Math.floor(this.maxBytes * EVENTS_SHARE);
    const { n, bytes } = this.q.eventBytes.get() as { n: number; bytes: number };
    if (bytes <= share || n === 0) return 0;
    const excess = Math.min(n, Math.ceil((bytes - share) / (bytes / n)));
    this.db.transaction(() => {
      this.q.dropOldestEvents.run(excess);
      this.q.countDroppedEvents.run(excess);
    })();
    this.log.warn({ dropped_events: excess, share_bytes: share }, 'events waiting for a batch passed their share of the store budget: dropped the oldest');
    return excess;
  }

  /**
   * Frees live data down to `targetUsedBytes`. On a full disk (`fullDisk`, from makeRoom) the
   * delivered batches are already gone, the steps are small and checkpointed between, and a step
   * that still finds no room ends the pass instead of throwing: the next SQLITE_FULL tries again.
   */
  private free(targetUsedBytes: number, result: EnforceResult, fullDisk = false): void {
    if (this.usage().usedBytes <= targetUsedBytes && result.prunedBatches === 0) return;
    let chunkMax = fullDisk ? FULL_DISK_CHUNK_MAX : CHUNK_MAX;
    if (!fullDisk) {
      this.housekeeping();
      result.prunedBatches = pruneDelivered(this.db, 0).batches;
    }
    for (let guard = 0; guard < 10_000; guard++) {
      const u = this.usage();
      const excess = u.usedBytes - targetUsedBytes;
      if (excess <= 0) break;
      const left = this.q.unbatched.get() as number;
      const plainVerdicts = left === 0 ? (this.q.unbatchedVerdicts.get(0) as number) : 0;
      const alertVerdicts = left === 0 && plainVerdicts === 0 ? (this.q.unbatchedVerdicts.get(1) as number) : 0;
      const chunk = Math.max(CHUNK_MIN, Math.min(chunkMax, Math.ceil(excess / 100)));
      // Small steps on a full disk: each one's WAL frames are checkpointed before the next, so the WAL is reused, not grown.
      if (fullDisk && guard > 0) this.wal.passive();
      // False when even the smallest step found no room on a full disk: the pass ends, the next SQLITE_FULL tries again.
      const step = (drop: () => void): boolean => {
        try {
          drop();
          return true;
        } catch (err) {
          if (!fullDisk || !isStoreFull(err)) throw err;
          // The WAL had no room for this step: checkpoint, and try again smaller.
          this.wal.onFullDisk();
          if (chunk <= CHUNK_MIN) return false;
          chunkMax = Math.max(CHUNK_MIN, Math.floor(chunk / 4));
          return true;
        }
      };
      if (left === 0 && plainVerdicts > 0) {
        if (!step(() => this.dropOldestVerdicts(0, Math.min(plainVerdicts, chunk), result.droppedVerdicts))) break;
        continue;
      }
      if (left === 0 && alertVerdicts > 0) {
        if (!step(() => this.dropOldestVerdicts(1, Math.min(alertVerdicts, chunk), result.droppedVerdicts))) break;
        continue;
      }
      if (left === 0) {
        if (performance.now() - this.lastStuckLogAt < 60_000) break;
        this.lastStuckLogAt = performance.now();
        // Say what fills it, so the advice fits (it was the redelivery guard once, not the batches).
        const held = this.heldShares();
        this.log.error(
          { used_bytes: u.usedBytes, max_bytes: this.maxBytes, ...held },
          `${this.maxBytes > 0 ? 'store over its budget' : 'disk full'} with nothing left to drop: ${held.pending_batch_bytes >= held.guard_bytes ? 'signed batches waiting for the uplink fill it (lower batch.max_pending or batch.max_readings, or raise store.max_bytes)' : 'the MQTT redelivery guard fills it (lower max_inflight of the MQTT sources, or raise store.max_bytes)'}`,
        );
        break;
      }
      // About 100 bytes per reading with its index entries; re-measured after every chunk.
      if (!step(() => this.dropOldest(Math.min(left, chunk), result.dropped))) break;
    }
    const total = [...result.dropped.values()].reduce((a, b) => a + b, 0);
    const verdicts = [...result.droppedVerdicts.values()].reduce((a, b) => a + b, 0);
    // Drops of many sensors add a counter row and a drops row each: back to their shares at once.
    // On a full disk too, now that the drops made room (a loaded run left drops_unreported at 5x its
    // share until the next housekeeping); if even that finds no room, the next housekeeping does it.
    if (total > 0) {
      try {
        capCounters(this.db);
        capDropsUnreported(this.db);
      } catch (err) {
        if (!fullDisk || !isStoreFull(err)) throw err;
        this.log.debug({ err: errorMessage(err) }, 'no room yet to fold counters and unreported drops into their shares; the next housekeeping does it');
      }
    }
    if (total > 0 || verdicts > 0 || result.prunedBatches > 0) {
      this.log.warn(
        { dropped: total, dropped_verdicts: verdicts, sensors: Object.fromEntries([...result.dropped].slice(0, 20)), pruned_delivered_batches: result.prunedBatches, ...this.usage(), max_bytes: this.maxBytes },
        'store budget reached: dropped the oldest readings not yet in a batch',
      );
    }
  }

  /** Rough bytes of what cannot be dropped, from row counts and the measured costs of store/budget-shares.ts. */
  private heldShares(): { pending_batch_bytes: number; guard_bytes: number; counter_rows: number } {
    const pendingEnvelope = pendingEnvelopeBytes(this.db);
    const guardRows = this.db.prepare('SELECT count(*) FROM source_resend_guard').pluck().get() as number;
    return {
      pending_batch_bytes: pendingEnvelope * PENDING_BYTES_PER_ENVELOPE_BYTE,
      guard_bytes: guardRows * GUARD_ROW_BYTES,
      counter_rows: this.db.prepare('SELECT count(*) FROM counters').pluck().get() as number,
    };
  }

  private dropOldest(n: number, into: Map<string, number>): void {
    this.db.transaction(() => {
      this.q.dropsSince.run(String(Date.now()));
      for (const { sensor, n: count } of this.q.oldestBySensor.all(n)) {
        this.q.countDropped.run(sensor, count);
        this.q.queueDrop.run(sensor, count);
        into.set(sensor, (into.get(sensor) ?? 0) + count);
      }
      this.q.deleteOldest.run(n);
    })();
  }

  private dropOldestVerdicts(changed: 0 | 1, n: number, into: Map<string, number>): void {
    this.db.transaction(() => {
      for (const { key, n: count } of this.q.oldestVerdictsByKey.all(changed, n)) {
        this.q.countDroppedVerdicts.run(key, count);
        into.set(key, (into.get(key) ?? 0) + count);
      }
      this.q.deleteOldestVerdicts.run(changed, n);
    })();
  }

  private shrinkFile(): void {
    const free = this.q.freelist.get() as number;
    if (free > 0) this.db.pragma(`incremental_vacuum(${free})`);
  }
}

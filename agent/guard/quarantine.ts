import { READING_FLAGS } from '../identity/batch-v3.js';
import type { GuardStore } from '../store/guard-store.js';
import { GUARD_ROWS_MAX } from '../store/guard-store.js';
import type { GuardBatch, GuardCheck, GuardReports } from './check.js';

/** Quarantine keys: a sensor id, or an origin (`SOURCE:ORIGIN`, e.g. `mqtt:sensors/flood`, `coap:127.0.0.2`). */
export const sensorQuarantineKey = (sensor: string) => `sensor:${sensor}`;
export const originQuarantineKey = (originKey: string) => `source:${originKey}`;

/** An event names what it is about in at most 256 UTF-16 units (§12.5): a longer key (`sensor:` and a 256-character id) is cut there. */
const eventKey = (key: string) => key.slice(0, 256);

interface Entry {
  key: string;
  reason: string;
  since: number;
  lastAbnormal: number;
  kept: number;
  dropped: number;
  tokens: number;
  tokensAt: number;
  dirty: boolean;
}

export interface QuarantinePolicy {
  keepPerS: number;
  keepMax: number;
  quietMs: number;
}

/**
 * Which keys are quarantined (README "Guarding the edge"): started by the watches, released after
 * `quiet_s` without abnormal behaviour or by the operator, each start and release an event
 * (quarantine.start / quarantine.release, docs/wire-format.md §12.5) and a row in the store.
 * A quarantined key's readings are kept up to `keep_per_s` and `keep_max` per quarantine (its
 * share of the disk), flagged quarantined; the rest are dropped and counted.
 */
export class QuarantineBook {
  private readonly entries = new Map<string, Entry>();

  constructor(
    private readonly store: GuardStore,
    private readonly reports: GuardReports,
    private readonly policy: QuarantinePolicy,
  ) {
    for (const r of store.activeQuarantines()) {
      this.entries.set(r.key, { key: r.key, reason: r.reason, since: r.since, lastAbnormal: r.lastAbnormal, kept: r.kept, dropped: r.dropped, tokens: policy.keepPerS, tokensAt: Date.now(), dirty: false });
    }
  }

  get size(): number {
    return this.entries.size;
  }

  isActive(key: string): boolean {
    return this.entries.has(key);
  }

  /** Starts a quarantine (or, for one already active, notes the behaviour as abnormal again). False when the key cannot be quarantined (GUARD_ROWS_MAX active). */
  start(key: string, reason: string, now: number, detail: Record<string, number | string> = {}): boolean {
    const e = this.entries.get(key);
    if (e) {
      this.abnormal(e, now);
      return true;
    }
    if (this.entries.size >= GUARD_ROWS_MAX) return false;
    this.entries.set(key, { key, reason, since: now, lastAbnormal: now, kept: 0, dropped: 0, tokens: this.policy.keepPerS, tokensAt: now, dirty: false });
    this.store.startQuarantine(key, reason, now);
    this.reports.event({ kind: 'quarantine.start', key: eventKey(key), ts: now, detail: { reason, by: 'guard', ...detail } }, 'quarantines');
    return true;
  }

  release(key: string, by: 'operator' | 'quiet', now: number): boolean {
    const e = this.entries.get(key);
    this.flushOne(e);
    const released = this.store.releaseQuarantine(key, now, by);
    if (!e && !released) return false;
    this.entries.delete(key);
    this.reports.event({ kind: 'quarantine.release', key: eventKey(key), ts: now, detail: { reason: e?.reason ?? 'unknown', by, kept: e?.kept ?? 0, dropped: e?.dropped ?? 0, since: e?.since ?? now } });
    return true;
  }

  /** The quarantine a reading falls under: its sensor's, else its origin's. */
  match(sensor: string, originKey: string): Entry | undefined {
    if (this.entries.size === 0) return undefined;
    return this.entries.get(sensorQuarantineKey(sensor)) ?? this.entries.get(originQuarantineKey(originKey));
  }

  /** Whether a quarantined reading fits the key's budget (counted either way). */
  keep(e: Entry, now: number): boolean {
    e.dirty = true;
    e.tokens = Math.min(this.policy.keepPerS, e.tokens + (Math.max(0, now - e.tokensAt) / 1000) * this.policy.keepPerS);
    e.tokensAt = now;
    if (e.kept < this.policy.keepMax && e.tokens >= 1) {
      e.tokens -= 1;
      e.kept++;
      return true;
    }
    e.dropped++;
    // Still sending beyond what a quarantine keeps: not quiet yet.
    e.lastAbnormal = now;
    return false;
  }

  abnormal(e: Entry, now: number): void {
    e.lastAbnormal = now;
    e.dirty = true;
  }

  /** Releases keys quiet for quiet_s, and writes the counts of the others. */
  tick(now: number): void {
    for (const e of [...this.entries.values()]) if (now - e.lastAbnormal >= this.policy.quietMs) this.release(e.key, 'quiet', now);
    const dirty = [...this.entries.values()].filter((e) => e.dirty);
    for (const e of dirty) e.dirty = false;
    this.store.saveQuarantineCounts(dirty);
  }

  private flushOne(e: Entry | undefined): void {
    if (e?.dirty) this.store.saveQuarantineCounts([e]);
  }
}

/** Flags the readings of quarantined keys (§12.3 bit 5) and holds them to the quarantine's budget. */
export class QuarantineCheck implements GuardCheck {
  readonly name = 'quarantine';

  constructor(private readonly book: QuarantineBook) {}

  inspect(b: GuardBatch): void {
    if (this.book.size === 0) return;
    b.readings.forEach((r, i) => {
      if (b.dropped[i]) return;
      const e = this.book.match(r.sensor, b.origin);
      if (!e) return;
      b.flags[i]! |= READING_FLAGS.quarantined;
      if (!this.book.keep(e, b.now)) b.dropped[i] = 'quarantine_budget';
    });
  }
}

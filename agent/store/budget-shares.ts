import { COUNTER_ROWS_MAX } from './counter-cap.js';
import { guardRowsFor } from './redelivery-guard.js';
import { GUARD_REQUESTS_KEPT, GUARD_ROWS_MAX } from './guard-store.js';

/**
 * What the store budget (`store.max_bytes`) must hold besides droppable readings, share by
 * share (README "Disk budget"). Figures measured on the shipped schema (4 KiB pages, dbstat):
 * a reading inside a pending batch costs its row, its index entries and its share of the signed
 * envelope: 127 bytes with a 2-character sensor id, 208 with a 27-character one; 256 is the
 * planning figure, and the batcher also stops at that many bytes of pending batches (3 x the
 * envelope bytes, measured 2.6-2.8 x), so longer ids cannot pass the share.
 */
export const SIGNED_READING_BYTES = 256;
/** Measured 52.6 bytes per guard row (3,448,832 bytes for 65,535 rows) plus its (source, seen_at) index entry. */
export const GUARD_ROW_BYTES = 100;
export const COUNTER_ROW_BYTES = 64;
/** The guard stage's tables (quarantines, maintenance windows, serial devices' sessions, requests; store/guard-store.ts): planning bytes per row, a key of up to ~200 characters (or 16 session numbers) with its row overhead. */
export const GUARD_TABLE_ROW_BYTES = 300;
export const GUARD_TABLES_BYTES = (3 * GUARD_ROWS_MAX + GUARD_REQUESTS_KEPT) * GUARD_TABLE_ROW_BYTES;
/** Events waiting for a batch may take this share of the budget (and at most 10,000 rows, store/event-store.ts); the oldest beyond it are dropped and counted (dropped_events). */
export const EVENTS_SHARE = 1 / 16;
/** Bytes an event row is counted at: its text plus the row and index overhead. */
export const EVENT_ROW_OVERHEAD_BYTES = 40;
/**
 * Sensor attestations waiting for a batch (store/attestation-store.ts): at most what one batch may
 * carry (wire-format.md §12.9, 1,000), each counted at 512 planning bytes (key 32, message 61,
 * signature 64, 32 reading ids as JSON ~200, row and index overhead). Held to this row cap, so
 * their share is fixed: 512,000 bytes when a serial source has sensor keys.
 */
export const ATTESTATIONS_WAITING_MAX = 1_000;
export const ATTESTATION_ROW_BYTES = 512;

/** One page for each of the ~20 tables and indexes, meta, and the first pages of growth. */
export const SCHEMA_BYTES = 32 * 4096;
/** Pending batches' footprint per envelope byte (row, index entries and envelope). */
export const PENDING_BYTES_PER_ENVELOPE_BYTE = 3;
/**
 * The store may pass its budget by at most this much: the budget is checked after each group
 * commit, so one commit's pages (commitGroupLimit readings, about 150 bytes each with the
 * redelivery guard row of a one-reading message) may land before the drop, and a WAL that
 * readers kept from being reset may pass its own allowance for a moment. Tests hold the agent to it.
 */
export const BUDGET_MARGIN_BYTES = 512 * 1024;

/** Readings per group commit: 5,000, and with a budget at most a sixteenth of it in planning bytes (never below 200). */
export function commitGroupLimit(maxBytes: number): number {
  if (maxBytes <= 0) return 5000;
  return Math.max(200, Math.min(5000, Math.floor(maxBytes / 16 / SIGNED_READING_BYTES)));
}

/** The WAL allowance inside a budget: an eighth, 64 KiB to 4 MiB; the WAL may reach twice it before it is cut. */
export function walLimitFor(maxBytes: number): number {
  return Math.max(64 * 1024, Math.min(4 * 1024 * 1024, Math.floor(maxBytes / 8)));
}

export interface BudgetInputs {
  maxPending: number;
  maxReadings: number;
  /** max_inflight of each MQTT source (one redelivery guard each). */
  mqttInflight: readonly number[];
  /** Without an uplink nothing drains the batches: no pending share, batches are kept for export. */
  hasUplink: boolean;
  /** A serial source has sensor keys (attest_keys): attestations waiting for a batch get their share. */
  attestations?: boolean;
}

export interface BudgetShares {
  /** Signed batches waiting for the uplink: never dropped (the chain). */
  pendingBatches: number;
  redeliveryGuard: number;
  counters: number;
  /** Sensor attestations waiting for a batch (0 without sensor keys). */
  attestations: number;
  /** The guard's quarantine, maintenance and request rows. */
  guard: number;
  schema: number;
  /** Room for at least one batch of new readings: the newest-first window never closes. */
  newestWindow: number;
  /** The five above and the window: what the data allowance must hold. */
  undroppable: number;
}

export function budgetShares(i: BudgetInputs): BudgetShares {
  // batch.max_pending, plus the one drops-only batch that may pass it (wire-format.md §4.5).
  const pendingBatches = i.hasUplink ? (i.maxPending * i.maxReadings + 1) * SIGNED_READING_BYTES : 0;
  const redeliveryGuard = i.mqttInflight.reduce((sum, n) => sum + guardRowsFor(n) * GUARD_ROW_BYTES, 0);
  const counters = COUNTER_ROWS_MAX * COUNTER_ROW_BYTES;
  const newestWindow = i.maxReadings * SIGNED_READING_BYTES;
  const attestations = i.attestations ? ATTESTATIONS_WAITING_MAX * ATTESTATION_ROW_BYTES : 0;
  return {
    pendingBatches,
    redeliveryGuard,
    counters,
    attestations,
    guard: GUARD_TABLES_BYTES,
    schema: SCHEMA_BYTES,
    newestWindow,
    undroppable: pendingBatches + redeliveryGuard + counters + attestations + GUARD_TABLES_BYTES + SCHEMA_BYTES + newestWindow,
  };
}

/** The bytes of pending batches at which the batcher stops cutting (with batch.max_pending). */
export function pendingShareBytes(i: Pick<BudgetInputs, 'maxPending' | 'maxReadings'>): number {
  return i.maxPending * i.maxReadings * SIGNED_READING_BYTES;
}

/**
 * The smallest store.max_bytes that holds the shares: the data allowance (budget minus twice the
 * WAL allowance, store/budget.ts) less the events' share at least `undroppable`.
 */
export function minimumBudget(i: BudgetInputs): number {
  const need = budgetShares(i).undroppable;
  const fits = (m: number) => m - 2 * walLimitFor(m) - Math.floor(m * EVENTS_SHARE) >= need;
  // fits() is a saw-tooth (the WAL allowance steps every 8 bytes, the events share every 16); "this and the next 16 fit" is
  // monotone, so a binary search finds the budget from which every larger one fits.
  const fitsFrom = (m: number) => {
    for (let k = 0; k <= 16; k++) if (!fits(m + k)) return false;
    return true;
  };
  let lo = need;
  let hi = Math.ceil(((need + 2 * 4 * 1024 * 1024) * 16) / 15) + 64;
  while (lo < hi) {
    const mid = Math.floor((lo + hi) / 2);
    if (fitsFrom(mid)) hi = mid;
    else lo = mid + 1;
  }
  return Math.max(lo, 1024 * 1024);
}

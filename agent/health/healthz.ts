import { errorMessage } from '../errors.js';
import type { AgentState } from './agent-state.js';

export interface Check {
  ok: boolean;
  reason: string;
}

export interface HealthReport {
  status: 'ok' | 'fail';
  /** The process answers: liveness. */
  live: true;
  /** Every check passed: readiness (HTTP 200, else 503). */
  ready: boolean;
  checked_at: string;
  checks: Record<string, Check>;
}

export interface HealthLimits {
  maxPendingBatchAgeS: number;
}

// A batch is due after batch.max_age_ms; past that plus this margin the batcher is stuck.
const BATCHER_STALL_MARGIN_MS = 60_000;

const secs = (ms: number) => `${Math.round(ms / 1000)} s`;
const mib = (bytes: number) => (bytes / 1048576).toFixed(1);

/** Readiness with a reason per check: store writable, buffer moving, uplink delivering, sources connected, clock synced. */
export function checkHealth(state: AgentState, limits: HealthLimits, now = Date.now()): HealthReport {
  const checks: Record<string, Check> = {
    store: safely('store', () => checkStore(state, now)),
    buffer: safely('buffer', () => checkBuffer(state, now)),
    uplink: safely('uplink', () => checkUplink(state, limits, now)),
    sources: safely('sources', () => checkSources(state)),
    clock: safely('clock', () =>
      state.clockSynced()
        ? { ok: true, reason: 'gateway clock is synchronised' }
        : {
            ok: false,
            reason:
              'gateway clock is not known to be synchronised (no NTP sync reported): readings are flagged gateway-unsynced; enable NTP, or set clock.synced: always on a board with a trusted clock',
          },
    ),
  };
  if (state.inferenceWarnings) {
    // A warning, not a failure: a binding that scores nothing does not stop readings being stored and delivered.
    const warnings = state.inferenceWarnings();
    checks['inference'] = { ok: true, reason: warnings.length > 0 ? `warning: ${warnings.join('; ')}` : 'every binding has matched sensors or is waiting for readings' };
  }
  const ready = Object.values(checks).every((c) => c.ok);
  return { status: ready ? 'ok' : 'fail', live: true, ready, checked_at: new Date(now).toISOString(), checks };
}

/** A check that throws (a store gone bad under it) is a failed check with the error, never a 500. */
function safely(name: string, fn: () => Check): Check {
  try {
    return fn();
  } catch (err) {
    return { ok: false, reason: `${name} check could not run: ${errorMessage(err)}` };
  }
}

function checkStore(state: AgentState, now: number): Check {
  try {
    state.probeStoreWrite(now);
    const budget = state.info.storeMaxBytes ? ` of the ${mib(state.info.storeMaxBytes)} MiB budget (store.max_bytes)` : '';
    return { ok: true, reason: `store ${state.dbPath} is writable (${mib(state.storeBytes())} MiB${budget})` };
  } catch (err) {
    return { ok: false, reason: `store ${state.dbPath} is not writable: ${errorMessage(err)}` };
  }
}

const BUFFER_COUNT_CAP = 100_000;

function checkBuffer(state: AgentState, now: number): Check {
  const { count, more, oldestReceivedAt } = state.unbatchedUpTo(BUFFER_COUNT_CAP);
  if (count === 0 || oldestReceivedAt === null) return { ok: true, reason: 'no readings waiting for a batch' };
  const n = `${more ? 'more than ' : ''}${count}`;
  const age = now - oldestReceivedAt;
  const pending = state.batchCounts().pending ?? 0;
  const maxPending = state.info.maxPendingBatches;
  if (maxPending !== undefined && pending >= maxPending) {
    // Held back on purpose (batch.max_pending): the uplink check says why.
    return { ok: true, reason: `${n} readings held unbatched while ${pending} batches wait for the uplink (batch.max_pending ${maxPending}), the oldest for ${secs(age)}` };
  }
  const limit = state.info.batchMaxAgeMs + BATCHER_STALL_MARGIN_MS;
  if (age > limit) {
    return { ok: false, reason: `${n} readings wait for a batch, the oldest for ${secs(age)} (batch.max_age_ms is ${state.info.batchMaxAgeMs}): batching is stalled` };
  }
  return { ok: true, reason: `${n} readings wait for a batch, the oldest for ${secs(age)}` };
}

function checkUplink(state: AgentState, limits: HealthLimits, now: number): Check {
  const up = state.uplink();
  const oldest = state.oldestPending();
  const pending = state.batchCounts().pending ?? 0;
  if (!up) {
    return { ok: true, reason: `no uplink configured: ${pending} batches kept locally` };
  }
  const failing = up.consecutiveFailures > 0 ? `; ${up.consecutiveFailures} failed attempts in a row, last error: ${up.lastError ?? '?'}` : '';
  if (!oldest) return { ok: true, reason: `nothing pending${failing}` };
  const age = now - oldest.created_at;
  const limitMs = limits.maxPendingBatchAgeS * 1000;
  if (age > limitMs) {
    return {
      ok: false,
      reason: `${pending} batches undelivered, the oldest (#${oldest.seq}) for ${secs(age)} (limit http.max_pending_batch_age_s ${limits.maxPendingBatchAgeS} s)${failing || (oldest.last_error ? `; last error: ${oldest.last_error}` : '')}`,
    };
  }
  return { ok: true, reason: `${pending} batches pending, the oldest for ${secs(age)}${failing}` };
}

function checkSources(state: AgentState): Check {
  const sources = state.sources();
  if (sources.length === 0) return { ok: true, reason: 'no sources configured' };
  const down = sources.filter((s) => !s.connected);
  if (down.length === 0) return { ok: true, reason: `${sources.length} connected: ${sources.map((s) => s.id).join(', ')}` };
  return {
    ok: false,
    reason: down.map((s) => `${s.id} (${s.type}) not connected to ${s.endpoint}${s.lastError ? `: ${s.lastError}` : ''}`).join('; '),
  };
}

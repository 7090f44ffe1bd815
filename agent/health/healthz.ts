import { errorMessage } from '../errors.js';
import type { AgentState } from './agent-state.js';

export interface Check {
  ok: boolean;
  reason: string;
  /**
   * Set on a check that does not pass but leaves the agent doing its job (an unknown clock, one
   * source of several down): /healthz stays 200 with status "degraded". A failing check without
   * it is a failure: 503.
   */
  degraded?: true;
}

export interface HealthReport {
  /** ok: every check passed; degraded: some did not, none failed (HTTP 200); fail: one failed (HTTP 503). */
  status: 'ok' | 'degraded' | 'fail';
  /** The process answers: liveness. */
  live: true;
  /** No check failed (degraded ones may): readiness (HTTP 200, else 503). */
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
export function checkHealth(state: AgentState, limits: HealthLimits, now = Date.now(), opts: { probeStore?: boolean } = {}): HealthReport {
  const checks: Record<string, Check> = {
    store: safely('store', () => (opts.probeStore === false ? { ok: true, reason: `store ${state.dbPath} is writable (this report is stored in it)` } : checkStore(state, now))),
    buffer: safely('buffer', () => checkBuffer(state, now)),
    uplink: safely('uplink', () => checkUplink(state, limits, now)),
    sources: safely('sources', () => checkSources(state, now)),
    drops: safely('drops', () => checkDrops(state, now)),
    clock: safely('clock', () => checkClock(state)),
  };
  const inference = state.inference?.();
  if (inference) checks['inference'] = safely('inference', () => checkInference(inference));
  const config = state.configNotice?.();
  if (config) checks['config'] = { ok: false, degraded: true, reason: config };
  const failed = Object.values(checks).some((c) => !c.ok && !c.degraded);
  const status = failed ? 'fail' : Object.values(checks).every((c) => c.ok) ? 'ok' : 'degraded';
  return { status, live: true, ready: !failed, checked_at: new Date(now).toISOString(), checks };
}

const degraded = (reason: string): Check => ({ ok: false, degraded: true, reason });

/**
 * A clock that is not known to be right is degraded, not a failure: readings are still stored,
 * signed and delivered, flagged gateway-unsynced (q 2) so the network knows (wire-format.md §12.4).
 */
function checkClock(state: AgentState): Check {
  const step = state.clockStep();
  if (step && !step.trusted) {
    return degraded(`gateway clock stepped by ${Math.round(step.stepMs / 1000)} s ${secs(step.agoMs)} ago: gateway-timed readings are flagged not synchronised (q 2) until it has been stable for clock.step_settle_s`);
  }
  const r = state.clockReading();
  if (r.state === 'synced') return { ok: true, reason: `gateway clock is synchronised (${r.source})` };
  const what = r.state === 'unknown' ? 'is not known to be synchronised' : 'is not synchronised';
  return degraded(
    `gateway clock ${what} (${r.source}): readings are flagged gateway-unsynced; enable NTP (systemd-timesyncd or chrony), or set clock.synced: always on a board with a trusted clock`,
  );
}

/** A binding whose model is disabled scores nothing: the operator configured a judgement that is not made. */
function checkInference(inference: { warnings: string[]; disabled: Record<string, { model: string; reason: string }> }): Check {
  const disabled = Object.entries(inference.disabled);
  if (disabled.length > 0) {
    return {
      ok: false,
      reason: `${disabled.map(([id, d]) => `binding ${id} disabled (model ${d.model}): ${d.reason}`).join('; ')}; its readings are stored and delivered unscored: fix the model files or inference.bindings, then reload (SIGHUP) or restart`,
    };
  }
  // A warning, not a failure: a binding that scores nothing yet does not stop readings being stored and delivered.
  const warnings = inference.warnings;
  return { ok: true, reason: warnings.length > 0 ? `warning: ${warnings.join('; ')}` : 'every binding has matched sensors or is waiting for readings' };
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
  // Receipts signed by another key can never count as delivered: no retry will fix it (§8).
  if (up.keyMismatch && up.consecutiveFailures > 0) {
    return {
      ok: false,
      reason: `receiver key mismatch: the receiver at ${state.uplinkView?.url ?? '?'} signs its receipts with ${up.keyMismatch.receiver}, but uplink.receiver_key is ${up.keyMismatch.configured}; nothing is delivered until they agree: set uplink.receiver_key to the key the receiver prints (edge-agent receive), or point uplink.url at the right receiver`,
    };
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

/**
 * Readings dropped under the disk budget must reach the network (wire-format.md §4.5): they ride
 * in the next batch, or a batch of drops alone after batch.max_age_ms. Longer than the stall
 * margin means the uplink is not taking batches: the operator should know data is lost unseen.
 */
function checkDrops(state: AgentState, now: number): Check {
  const d = state.unreportedDrops();
  if (d.readings === 0 || d.since === null) return { ok: true, reason: 'every dropped reading has been put in a batch for upstream' };
  const age = Math.max(0, now - d.since);
  const text = `${d.readings} readings of ${d.sensors} sensors dropped under the disk budget and not yet reported upstream, the oldest drop ${secs(age)} ago`;
  if (age > state.info.batchMaxAgeMs + BATCHER_STALL_MARGIN_MS) return { ok: false, reason: `${text}: no batch has carried them (uplink not taking batches?)` };
  return { ok: true, reason: text };
}

/** How long a source's upstream loss keeps the sources check failing. */
const SOURCE_LOSS_HOLD_MS = 10 * 60_000;

function checkSources(state: AgentState, now: number): Check {
  const sources = state.sources();
  if (sources.length === 0) return { ok: true, reason: 'no sources configured' };
  const down = sources.filter((s) => !s.connected);
  // Data lost upstream (a broker that lost the session) degrades the check for a while: someone should look.
  const lost = sources.filter((s) => s.lossAt !== undefined && now - s.lossAt < SOURCE_LOSS_HOLD_MS);
  if (down.length === 0 && lost.length === 0) return { ok: true, reason: `${sources.length} connected: ${sources.map((s) => s.id).join(', ')}` };
  const startFailed = sources.filter((s) => s.startError !== undefined);
  const reasons = [
    ...down.map((s) =>
      s.startError !== undefined ? `${s.id} (${s.type}) on ${s.endpoint} failed to start: ${s.startError}` : `${s.id} (${s.type}) not connected to ${s.endpoint}${s.lastError ? `: ${s.lastError}` : ''}`,
    ),
    ...lost.map((s) => `${s.id} (${s.type}) lost data upstream ${secs(now - s.lossAt!)} ago: ${s.loss}`),
  ].join('; ');
  // No input at all is a failure: nothing new is stored. Some input left is degraded.
  if (startFailed.length === sources.length) return { ok: false, reason: `every source failed to start: ${reasons}` };
  if (down.length === sources.length) return { ok: false, reason: reasons };
  return degraded(reasons);
}

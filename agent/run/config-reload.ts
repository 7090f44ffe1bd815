import { isDeepStrictEqual } from 'node:util';
import type { AgentConfig } from '../config/schema.js';

/** What a reload did: keys now in force, and keys whose new value waits for a restart. */
export interface ReloadResult {
  applied: string[];
  needsRestart: string[];
}

/**
 * Keys a running agent takes over without a restart (README "Reloading the config"). A key is
 * live when its owner can be told the new value between two readings: the score stage is rebuilt
 * (bindings, thresholds, models), the guard is rebuilt (ranges, budgets, policies), the batcher,
 * forwarder and heartbeat take new limits, the logger a new level, Home Assistant reconnects, the
 * adaptive-reporting controller takes a new policy. Everything else (store, device key, source listen
 * addresses and brokers, the uplink's URL, keys and TLS, the health endpoint) is opened once at
 * start: a change there is reported as "restart needed for".
 */
const LIVE: readonly string[] = [
  'inference.bindings',
  'inference.models_dir',
  'inference.publisher_key',
  'inference.max_queue',
  'inference.unmatched_warn_after',
  'inference.state_save_interval_s',
  'batch.max_readings',
  'batch.max_age_ms',
  'batch.max_pending',
  'batch.format',
  'uplink.retry_initial_ms',
  'uplink.retry_max_ms',
  'uplink.max_batches_per_s',
  'store.retain_delivered_hours',
  'heartbeat.interval_s',
  'home_assistant',
  'log.level',
  'guard',
  'adaptive.policy',
  'adaptive.retry_s',
];

/** Maps (sources, bindings) are compared per entry; other sections per key; home_assistant as one. */
const DEPTH: Record<string, number> = { sources: 2, inference: 2, home_assistant: 1, guard: 2 };
const INFERENCE_BINDINGS_DEPTH = 3;

/** The key paths whose value differs, e.g. `batch.max_readings`, `inference.bindings.pump`, `sources.mqtt`. */
export function changedKeys(before: AgentConfig, after: AgentConfig): string[] {
  const out: string[] = [];
  const walk = (a: unknown, b: unknown, path: string[], depth: number): void => {
    if (isDeepStrictEqual(a, b)) return;
    const objects = typeof a === 'object' && a !== null && typeof b === 'object' && b !== null && !Array.isArray(a) && !Array.isArray(b);
    if (path.length >= depth || !objects) {
      out.push(path.join('.'));
      return;
    }
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    for (const k of [...keys].sort()) walk((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], [...path, k], depthOf([...path, k]));
  };
  const depthOf = (path: string[]) => (path[0] === 'inference' && path[1] === 'bindings' ? INFERENCE_BINDINGS_DEPTH : (DEPTH[path[0]!] ?? 2));
  for (const k of [...new Set([...Object.keys(before), ...Object.keys(after)])].sort()) {
    walk((before as Record<string, unknown>)[k], (after as Record<string, unknown>)[k], [k], depthOf([k]));
  }
  return out;
}

export function isLive(key: string): boolean {
  return LIVE.some((l) => key === l || key.startsWith(`${l}.`));
}

/** Splits changed keys into what can apply now and what waits for a restart (a section added or removed is never live, but home_assistant). */
export function classifyChanges(before: AgentConfig, after: AgentConfig): ReloadResult {
  const changed = changedKeys(before, after);
  return { applied: changed.filter(isLive), needsRestart: changed.filter((k) => !isLive(k)) };
}

/** The outcome of the last reload, as status --json shows it. */
export interface LastReload {
  at: number;
  ok: boolean;
  applied: string[];
  needs_restart: string[];
  error?: string;
}

/** What status and /healthz say about reloads: keys waiting for a restart, and the last outcome. */
export class ReloadRecord {
  private restartNeeded: string[] = [];
  private last: LastReload | undefined;

  applied(result: ReloadResult, at = Date.now()): void {
    this.restartNeeded = result.needsRestart;
    this.last = { at, ok: true, applied: result.applied, needs_restart: result.needsRestart };
  }

  refused(error: string, at = Date.now()): void {
    // One line for status and /healthz: the config loader lists its problems one per line.
    this.last = { at, ok: false, applied: [], needs_restart: this.restartNeeded, error: error.replace(/:?\n\s*/g, (m) => (m.startsWith(':') ? ': ' : '; ')) };
  }

  /** One line for /healthz (a degraded config check), undefined when there is nothing to say. */
  notice(): string | undefined {
    const parts: string[] = [];
    if (this.restartNeeded.length > 0) parts.push(`restart needed for: ${this.restartNeeded.join(', ')} (changed in the config file; the running agent still uses the old values)`);
    if (this.last && !this.last.ok) parts.push(`the last reload at ${new Date(this.last.at).toISOString()} was refused, the running config is kept: ${this.last.error}`);
    return parts.length > 0 ? parts.join('; ') : undefined;
  }

  snapshot(): { restart_needed: string[]; last_reload: LastReload | null } {
    return { restart_needed: this.restartNeeded, last_reload: this.last ?? null };
  }
}

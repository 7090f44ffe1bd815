import type { ClockStatus } from '../clock/clock-status.js';
import type { Logger } from '../log.js';
import type { ReadingSink } from '../contracts/reading-sink.js';
import type { AgentEventInput } from '../store/event-store.js';

export interface SourceHealth {
  type: string;
  connected: boolean;
  /** What it is connected to or listening on. */
  endpoint: string;
  accepted: number;
  duplicates: number;
  rejected: number;
  lastMessageAt?: number;
  lastError?: string;
  /** Source-specific counters (serial: CRC errors, gaps, ...). */
  counters?: Record<string, number>;
}

export interface SourceContext {
  id: string;
  /** `submit` resolves once the readings are committed: only then may the source acknowledge. */
  sink: ReadingSink;
  clock: ClockStatus;
  log: Logger;
  /** Resolves paths in the config (password files...) against the data dir. */
  resolvePath(p: string): string;
  /** This source's committed stream positions (`Submission.cursors`) whose name starts with `prefix`. */
  cursors(prefix: string): Map<string, number>;
  /** Events carried upstream in the next batch (store/event-store.ts), e.g. 'serial.session'. */
  events?: { record(e: AgentEventInput): number };
}

/**
 * A source turns bytes from sensors into readings. Every source obeys one rule: it
 * acknowledges to its sender only what `sink.submit` has committed. A failing source must
 * not take the agent down: errors are logged, counted and shown in `health()`.
 */
export interface Source {
  readonly id: string;
  start(): Promise<void>;
  /**
   * Resolves once the source takes input (MQTT: the broker granted the subscription, so nothing
   * published from now on is dropped). Absent: ready once started. Never rejects; may never resolve
   * (a broker that never answers), so the run does not wait on it.
   */
  ready?(): Promise<void>;
  stop(): Promise<void>;
  health(): SourceHealth;
}

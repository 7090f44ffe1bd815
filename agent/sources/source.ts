import type { ClockStatus } from '../clock/clock-status.js';
import type { Logger } from '../log.js';
import type { GroupCommitWriter } from '../pipeline/group-commit.js';
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
  writer: GroupCommitWriter;
  clock: ClockStatus;
  log: Logger;
  /** Resolves paths in the config (password files...) against the data dir. */
  resolvePath(p: string): string;
  /** Serial sources: the highest committed sequence per sensor of a device session (PROTOCOL.md §4). */
  serialProgress(device: string, session: number): Map<number, number>;
  /** Events carried upstream in the next batch (store/event-store.ts), e.g. 'serial.session'. */
  events?: { record(e: AgentEventInput): number };
}

/**
 * A source turns bytes from sensors into readings. Every source obeys one rule: it
 * acknowledges to its sender only what `writer.submit` has committed. A failing source must
 * not take the agent down: errors are logged, counted and shown in `health()`.
 */
export interface Source {
  readonly id: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  health(): SourceHealth;
}

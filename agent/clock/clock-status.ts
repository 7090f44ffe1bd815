import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { gatewayTimeSourceOf, type TimeSource } from '../types.js';

export type ClockPolicy = 'auto' | 'always' | 'never';

// No board can be right about a time before this agent was written: a clock that reads
// earlier is certainly unset (no RTC, no NTP yet), whatever the OS claims.
const EARLIEST_PLAUSIBLE_MS = Date.UTC(2025, 0, 1);
const RECHECK_MS = 30_000;

/**
 * Whether the gateway clock is known to be synchronised. 'auto' believes systemd-timesyncd's
 * flag file or timedatectl's NTPSynchronized; without either it says "not known", which is
 * the honest answer on a board that has not proven its time.
 */
export class ClockStatus {
  private cached: { at: number; synced: boolean } | undefined;

  constructor(
    private readonly policy: ClockPolicy,
    private readonly probe: () => boolean = probeOsClockSync,
  ) {}

  isSynced(now = Date.now()): boolean {
    if (now < EARLIEST_PLAUSIBLE_MS) return false;
    if (this.policy !== 'auto') return this.policy === 'always';
    const mono = performance.now();
    if (!this.cached || mono - this.cached.at > RECHECK_MS) this.cached = { at: mono, synced: this.probe() };
    return this.cached.synced;
  }

  /** How to mark a reading stamped with the gateway clock now. */
  gatewayTimeSource(now = Date.now()): TimeSource {
    return gatewayTimeSourceOf(this.isSynced(now));
  }
}

export function probeOsClockSync(): boolean {
  // systemd-timesyncd touches this file once it has synchronised (systemd-timesyncd.service(8)).
  if (existsSync('/run/systemd/timesync/synchronized')) return true;
  try {
    const out = execFileSync('timedatectl', ['show', '--property=NTPSynchronized', '--value'], { timeout: 2000, stdio: ['ignore', 'pipe', 'ignore'] });
    return out.toString().trim() === 'yes';
  } catch {
    return false; // no timedatectl (containers, non-systemd boards): not known to be synchronised
  }
}

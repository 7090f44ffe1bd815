import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { gatewayTimeSourceOf, type TimeSource } from '../types.js';
import { ClockStepDetector, type ClockStep } from './clock-step.js';

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
export interface ClockStepOptions {
  thresholdMs: number;
  settleMs: number;
  onStep(step: ClockStep): void;
}

export class ClockStatus {
  private cached: { at: number; synced: boolean } | undefined;
  private probing = false;
  readonly steps: ClockStepDetector | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly policy: ClockPolicy,
    private readonly probe: () => boolean = probeOsClockSync,
    steps?: ClockStepOptions,
    /** Re-probes off the event loop (the agent); without it the probe runs inline (doctor, tests). */
    private readonly probeAsync?: () => Promise<boolean>,
  ) {
    if (steps) {
      this.steps = new ClockStepDetector(steps.thresholdMs, steps.settleMs, (step) => {
        // A clock that just stepped must prove itself again: the OS is asked afresh.
        this.cached = undefined;
        steps.onStep(step);
      });
    }
  }

  /** Watches for steps once a second even when no reading arrives, so the step is reported when it happens. */
  start(): void {
    if (this.steps && !this.timer) {
      this.timer = setInterval(() => this.steps?.check(), 1000);
      this.timer.unref();
    }
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }

  isSynced(now = Date.now()): boolean {
    if (now < EARLIEST_PLAUSIBLE_MS) return false;
    if (this.steps) {
      this.steps.check(now);
      if (!this.steps.trusted()) return false;
    }
    if (this.policy !== 'auto') return this.policy === 'always';
    const mono = performance.now();
    if (!this.cached) this.cached = { at: mono, synced: this.probe() };
    else if (mono - this.cached.at > RECHECK_MS) this.refresh(mono);
    return this.cached.synced;
  }

  /**
   * timedatectl can take up to its 2 s timeout: with probeAsync the agent keeps the cached answer
   * and asks in the background, so no reading (and no /healthz/live) waits for it.
   */
  private refresh(mono: number): void {
    if (!this.probeAsync) {
      this.cached = { at: mono, synced: this.probe() };
      return;
    }
    if (this.probing) return;
    this.probing = true;
    this.probeAsync()
      .then((synced) => (this.cached = { at: performance.now(), synced }))
      .catch(() => (this.cached = { at: performance.now(), synced: false }))
      .finally(() => (this.probing = false));
  }

  /** How to mark a reading stamped with the gateway clock now. */
  gatewayTimeSource(now = Date.now()): TimeSource {
    return gatewayTimeSourceOf(this.isSynced(now));
  }
}

/** probeOsClockSync without blocking: the flag file, else timedatectl as a child process. */
export function probeOsClockSyncAsync(): Promise<boolean> {
  if (existsSync('/run/systemd/timesync/synchronized')) return Promise.resolve(true);
  return new Promise((resolve) => {
    execFile('timedatectl', ['show', '--property=NTPSynchronized', '--value'], { timeout: 2000 }, (err, stdout) => resolve(!err && String(stdout).trim() === 'yes'));
  });
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

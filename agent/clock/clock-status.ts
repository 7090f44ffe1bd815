import { gatewayTimeSourceOf, type TimeSource } from '../types.js';
import { probeClock, probeClockAsync, type ClockReading } from './clock-probe.js';
import { ClockStepDetector, type ClockStep } from './clock-step.js';

export type { ClockReading };
export type ClockPolicy = 'auto' | 'always' | 'never';

// No board can be right about a time before this agent was written: a clock that reads
// earlier is certainly unset (no RTC, no NTP yet), whatever the OS claims.
const EARLIEST_PLAUSIBLE_MS = Date.UTC(2025, 0, 1);
const RECHECK_MS = 30_000;

export interface ClockStepOptions {
  thresholdMs: number;
  settleMs: number;
  onStep(step: ClockStep): void;
}

/**
 * Whether the gateway clock is known to be synchronised. 'auto' asks the OS (clock-probe.ts:
 * systemd-timesyncd, timedatectl, chronyc, the kernel's adjtimex state); when none can tell it
 * says "unknown", which is the honest answer on a board that has not proven its time.
 */
export class ClockStatus {
  private cached: { at: number; reading: ClockReading } | undefined;
  private probing = false;
  readonly steps: ClockStepDetector | undefined;
  private timer: NodeJS.Timeout | undefined;

  constructor(
    private readonly policy: ClockPolicy,
    private readonly probe: () => ClockReading = probeClock,
    steps?: ClockStepOptions,
    /** Re-probes off the event loop (the agent); without it the probe runs inline (doctor, tests). */
    private readonly probeAsync?: () => Promise<ClockReading>,
  ) {
    if (steps) {
      this.steps = new ClockStepDetector(steps.thresholdMs, steps.settleMs, (step) => {
        // A clock that just stepped must prove itself again: the OS is asked afresh.
        this.cached = undefined;
        steps.onStep(step);
      });
    }
  }

  /**
   * Takes the answer of a probe already started (`edge-agent run` starts one before it loads the
   * agent's code, so the child processes run while the modules load): the first reading() then
   * finds it cached instead of blocking the event loop on execFileSync (24-58 ms at start here).
   * A reading() needed before it answers still probes inline, as without it.
   */
  seed(probe: Promise<ClockReading>): Promise<void> {
    return probe.then(
      (reading) => {
        this.cached ??= { at: performance.now(), reading };
      },
      () => undefined, // the inline probe asks again when a reading is needed
    );
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
    return this.reading(now).state === 'synced';
  }

  /** The clock's state with who said so: the policy, a step, an implausible date or the OS. */
  reading(now = Date.now()): ClockReading {
    if (now < EARLIEST_PLAUSIBLE_MS) return { state: 'unsynced', source: `the wall clock reads ${new Date(now).toISOString()}, before any plausible time (no RTC, no NTP yet)` };
    if (this.steps) {
      this.steps.check(now);
      if (!this.steps.trusted()) return { state: 'unsynced', source: 'the wall clock stepped and has not settled yet' };
    }
    // never: the operator does not trust this clock, whatever the OS says: not known to be right.
    if (this.policy !== 'auto') return { state: this.policy === 'always' ? 'synced' : 'unknown', source: `clock.synced: ${this.policy}` };
    const mono = performance.now();
    if (!this.cached) this.cached = { at: mono, reading: this.probe() };
    else if (mono - this.cached.at > RECHECK_MS) this.refresh(mono);
    return this.cached.reading;
  }

  /**
   * Each OS probe can take up to its 2 s timeout: with probeAsync the agent keeps the cached answer
   * and asks in the background, so no reading (and no /healthz/live) waits for it.
   */
  private refresh(mono: number): void {
    if (!this.probeAsync) {
      this.cached = { at: mono, reading: this.probe() };
      return;
    }
    if (this.probing) return;
    this.probing = true;
    this.probeAsync()
      .then((reading) => (this.cached = { at: performance.now(), reading }))
      .catch((err: unknown) => (this.cached = { at: performance.now(), reading: { state: 'unknown', source: `the clock probe failed: ${String(err)}` } }))
      .finally(() => (this.probing = false));
  }

  /** How to mark a reading stamped with the gateway clock now. */
  gatewayTimeSource(now = Date.now()): TimeSource {
    return gatewayTimeSourceOf(this.isSynced(now));
  }
}


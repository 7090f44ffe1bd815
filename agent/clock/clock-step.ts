/** A step of the wall clock against the monotonic clock (an NTP step, an RTC-less board setting its time, an operator). */
export interface ClockStep {
  /** Signed: negative when the clock went back. */
  stepMs: number;
  /** Wall clock just before and just after the step, ms since the epoch. */
  beforeMs: number;
  afterMs: number;
}

/**
 * Detects wall-clock steps by watching Date.now() - performance.now(): the monotonic clock never
 * steps, so a jump in the difference larger than `thresholdMs` is a step of the wall clock
 * (NTP slews by far less). After a step the wall clock is not trusted until it has gone
 * `settleMs` without another step: a clock that just moved may be right or wrong, and the readings
 * it stamps in between say so (quality 2, docs/wire-format.md §3 `q`).
 */
export class ClockStepDetector {
  private offset: number;
  private lastStepAtMono: number | undefined;
  private last: ClockStep | undefined;

  constructor(
    private readonly thresholdMs: number,
    private readonly settleMs: number,
    private readonly onStep: (step: ClockStep) => void = () => {},
    private readonly mono: () => number = () => performance.now(),
  ) {
    this.offset = Date.now() - this.mono();
  }

  /** Compares the clocks now; calls onStep once per step. Cheap: called for every gateway-timed reading. */
  check(now = Date.now()): void {
    const mono = this.mono();
    const offset = now - mono;
    const drift = offset - this.offset;
    this.offset = offset;
    if (Math.abs(drift) < this.thresholdMs) return;
    this.lastStepAtMono = mono;
    this.last = { stepMs: Math.round(drift), beforeMs: Math.round(now - drift), afterMs: now };
    this.onStep(this.last);
  }

  /** False from a step until the clock has gone settleMs without another. */
  trusted(): boolean {
    return this.lastStepAtMono === undefined || this.mono() - this.lastStepAtMono >= this.settleMs;
  }

  /** The last step and how long ago it was (monotonic ms), for health and status. */
  lastStep(): (ClockStep & { agoMs: number }) | undefined {
    return this.last && this.lastStepAtMono !== undefined ? { ...this.last, agoMs: this.mono() - this.lastStepAtMono } : undefined;
  }
}

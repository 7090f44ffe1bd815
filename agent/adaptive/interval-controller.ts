import type { IntervalControl, IntervalOutcome } from '../contracts/interval-control.js';
import type { StoredVerdict } from '../identity/verdict-format.js';
import type { AgentEventInput } from '../identity/event-format.js';
import type { Logger } from '../log.js';
import type { PolicyRule } from './config.js';
import { ruleFor, targetFor, type Target } from './policy.js';

/** Sensors the controller follows at most: a flood of new sensor ids must not grow its memory. */
const MAX_SENSORS = 10_000;

interface SensorState {
  /** The interval last confirmed by the device (applied), if any. */
  applied?: number;
  /** What the policy wants now, and whether a request for it is out. */
  wanted?: Target;
  inFlight: boolean;
  /** After a failure (no answer, not reachable), not before this (performance.now()). */
  retryAt: number;
  /** A refusal by the device for this interval: not asked again until the policy wants another. */
  refused?: number;
  /** The last outcome recorded upstream: a request failing again the same way is not recorded again. */
  recorded?: string;
}

export interface IntervalControllerOptions {
  rules: readonly PolicyRule[];
  /** Serial sources first, then the MQTT command topic: the first that reaches a sensor is used. */
  controls: readonly IntervalControl[];
  events: { record(e: AgentEventInput): number };
  retryMs: number;
  log: Logger;
}

/**
 * Adaptive reporting (issue 14 item 5): keeps every sensor the policy names at the interval the
 * policy wants, from the side. It is told what was committed (the sensors it sees) and every
 * alert change (verdicts), and asks the device through an IntervalControl; it never calls into
 * a stage. Every outcome is a signed `report.interval` event (docs/wire-format.md §12.5), so the
 * network knows at what rate a sensor was reporting and why.
 */
export class IntervalController {
  private readonly sensors = new Map<string, SensorState>();
  private readonly alerts = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  readonly stats = { requests: 0, applied: 0, refused: 0, failed: 0, untracked: 0 };
  private rules: readonly PolicyRule[];
  private retryMs: number;

  constructor(private readonly opts: IntervalControllerOptions) {
    this.rules = opts.rules;
    this.retryMs = opts.retryMs;
  }

  start(): void {
    // Failed requests are tried again on a timer; nothing else waits on it.
    if (this.timer) clearInterval(this.timer);
    this.timer = setInterval(() => this.retryDue(), Math.min(this.retryMs, 5000));
    this.timer.unref();
  }

  /**
   * A reloaded policy (SIGHUP, adaptive.policy / adaptive.retry_s): every followed sensor is judged
   * again at once under the new rules; one they no longer name keeps the interval it has and is
   * no longer followed; sensors they newly name are followed from their next committed reading.
   */
  setPolicy(rules: readonly PolicyRule[], retryMs: number): void {
    this.rules = rules;
    const retryChanged = retryMs !== this.retryMs;
    this.retryMs = retryMs;
    if (retryChanged && this.timer && !this.stopped) this.start();
    for (const sensor of [...this.sensors.keys()]) {
      if (!ruleFor(rules, sensor)) this.sensors.delete(sensor);
      else this.evaluate(sensor);
    }
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
  }

  /** Sensors of committed readings: the first sight of one the policy names sets its interval. */
  noteSensors(sensors: Iterable<string>): void {
    for (const sensor of sensors) {
      if (this.sensors.has(sensor)) continue;
      if (!ruleFor(this.rules, sensor)) continue;
      if (this.sensors.size >= MAX_SENSORS) {
        this.stats.untracked++;
        continue;
      }
      this.sensors.set(sensor, { inFlight: false, retryAt: 0 });
      this.evaluate(sensor);
    }
  }

  /** An alert change (raised or cleared) from the score stage's publisher fan-out. */
  noteAlert(v: Pick<StoredVerdict, 'key' | 'modelId' | 'alert'>): void {
    const models = this.alerts.get(v.key) ?? new Set<string>();
    if (v.alert) models.add(v.modelId);
    else models.delete(v.modelId);
    if (models.size > 0) this.alerts.set(v.key, models);
    else this.alerts.delete(v.key);
    for (const sensor of this.sensors.keys()) this.evaluate(sensor);
  }

  /** For status: each followed sensor's applied and wanted interval. */
  snapshot(): Record<string, { applied: number | null; wanted: number | null; reason: string | null }> {
    return Object.fromEntries([...this.sensors].map(([s, st]) => [s, { applied: st.applied ?? null, wanted: st.wanted?.intervalMs ?? null, reason: st.wanted?.reason ?? null }]));
  }

  private evaluate(sensor: string): void {
    const st = this.sensors.get(sensor);
    const target = targetFor(this.rules, sensor, this.alerts);
    if (!st || !target || this.stopped) return;
    const changed = st.wanted?.intervalMs !== target.intervalMs;
    st.wanted = target;
    if (changed) st.refused = undefined;
    if (st.inFlight || st.applied === target.intervalMs || st.refused === target.intervalMs) return;
    if (!changed && performance.now() < st.retryAt) return;
    void this.request(sensor, st, target);
  }

  private async request(sensor: string, st: SensorState, target: Target): Promise<void> {
    const control = this.opts.controls.find((c) => c.reaches(sensor));
    st.inFlight = true;
    this.stats.requests++;
    let outcome: IntervalOutcome;
    try {
      outcome = control ? await control.setInterval(sensor, target.intervalMs) : { status: 'not_connected', via: 'none' };
    } catch (err) {
      // A control must not reject; if one does, it is a failed attempt like any other.
      outcome = { status: 'timeout', via: 'error' };
      this.opts.log.warn({ err, sensor }, 'interval request failed');
    }
    st.inFlight = false;
    if (outcome.status === 'applied') {
      st.applied = outcome.intervalMs ?? target.intervalMs;
      this.stats.applied++;
    } else if (outcome.status === 'timeout' || outcome.status === 'not_connected') {
      st.retryAt = performance.now() + this.retryMs;
      this.stats.failed++;
    } else {
      st.refused = target.intervalMs;
      this.stats.refused++;
      this.opts.log.warn(
        { sensor, interval_ms: target.intervalMs, status: outcome.status, device_interval_ms: outcome.intervalMs, min_ms: outcome.minMs, max_ms: outcome.maxMs, via: outcome.via },
        `the device refused the reporting interval (${outcome.status}): set adaptive.policy intervals for this sensor within what it accepts`,
      );
    }
    const what = `${target.intervalMs}:${outcome.status}`;
    if (outcome.status === 'applied' || st.recorded !== what) this.record(sensor, target, outcome);
    st.recorded = what;
    // The policy may have moved on while the request was out.
    if (!this.stopped && st.wanted && st.wanted.intervalMs !== target.intervalMs) this.evaluate(sensor);
  }

  private record(sensor: string, target: Target, o: IntervalOutcome): void {
    try {
      this.opts.events.record({
        kind: 'report.interval',
        key: sensor,
        detail: {
          interval_ms: target.intervalMs,
          status: o.status,
          via: o.via.slice(0, 256),
          reason: target.reason,
          ...(target.alert ? { alert_series: target.alert.series.slice(0, 256), alert_model: target.alert.model } : {}),
          ...(o.intervalMs !== undefined ? { device_interval_ms: o.intervalMs } : {}),
          ...(o.minMs !== undefined ? { min_ms: o.minMs } : {}),
          ...(o.maxMs !== undefined ? { max_ms: o.maxMs } : {}),
        },
      });
    } catch (err) {
      this.opts.log.warn({ err, sensor }, 'could not store the report.interval event');
    }
  }

  private retryDue(): void {
    const now = performance.now();
    for (const [sensor, st] of this.sensors) {
      // A device that rebooted declares its firmware's period again: what it applied before is gone.
      if (st.applied !== undefined && !st.inFlight) {
        const current = this.opts.controls.find((c) => c.reaches(sensor))?.current?.(sensor);
        if (current !== undefined && current !== st.applied) {
          this.opts.log.info({ sensor, applied: st.applied, device_interval_ms: current }, 'the device reports another interval than it applied (rebooted?); asking again');
          st.applied = undefined;
          st.retryAt = 0;
        }
      }
      if (!st.inFlight && st.wanted && st.applied !== st.wanted.intervalMs && st.refused !== st.wanted.intervalMs && now >= st.retryAt) this.evaluate(sensor);
    }
  }
}

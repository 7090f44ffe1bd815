import type { StoredVerdict } from '../identity/verdict-format.js';
import type { Logger } from '../log.js';
import type { HeldReadings } from '../store/held-readings.js';
import { RepeatedLog } from '../util/repeated-log.js';
import { topicMatches } from '../util/topic-filter.js';
import type { SummaryConfig } from './config.js';

/** Sensors in full-rate mode at once at most (each an alert): beyond it, a sensor simply stays summarized. */
const MAX_FULL_RATE = 10_000;

/**
 * Uplink summary mode (agent/adaptive/README.md), from the side: tells the store which readings to
 * keep instead of uploading (`hold`), closes the summary windows on a timer, and on an alert
 * hands the sensor's kept readings from `before_alert_ms` before it back to the batch cut and
 * uploads the sensor in full until `after_alert_ms` after the alert clears.
 */
export class SummaryMode {
  /** Sensor → until when (Date.now() ms) it is uploaded in full; Infinity while an alert is raised. */
  private readonly fullRate = new Map<string, number>();
  /** Series in alert, by the models that raised it. */
  private readonly alerts = new Map<string, Set<string>>();
  private timer: NodeJS.Timeout | undefined;
  private readonly failed: RepeatedLog;
  readonly stats = { summaries: 0, summarized: 0, released: 0 };

  constructor(
    private readonly cfg: SummaryConfig,
    private readonly held: HeldReadings,
    private readonly log: Logger,
  ) {
    this.failed = new RepeatedLog(log, 'warn', 'summary mode: could not close summary windows; will retry');
  }

  /** The store asks this at commit: kept (true) or for the next batch (false). */
  hold(sensor: string): boolean {
    if (!this.cfg.sensors.some((f) => topicMatches(f, sensor))) return false;
    const until = this.fullRate.get(sensor);
    if (until === undefined) return true;
    if (until > Date.now()) return false;
    this.fullRate.delete(sensor);
    return true;
  }

  start(): void {
    const tick = Math.min(this.cfg.interval_ms, 5000);
    this.timer = setInterval(() => this.summarize(), tick);
    this.timer.unref();
  }

  summarize(): void {
    try {
      const pass = this.held.summarize(this.cfg.interval_ms);
      this.stats.summaries += pass.summaries;
      this.stats.summarized += pass.readings;
      this.failed.recovered();
    } catch (err) {
      this.failed.report(err);
    }
  }

  noteAlert(v: Pick<StoredVerdict, 'key' | 'modelId' | 'alert' | 'ts'>): void {
    if (!this.cfg.sensors.some((f) => topicMatches(f, v.key))) return;
    const models = this.alerts.get(v.key) ?? new Set<string>();
    if (v.alert) models.add(v.modelId);
    else models.delete(v.modelId);
    if (models.size > 0) this.alerts.set(v.key, models);
    else this.alerts.delete(v.key);
    if (models.size === 0) {
      if (this.fullRate.has(v.key)) this.fullRate.set(v.key, Date.now() + this.cfg.after_alert_ms);
      return;
    }
    const already = this.fullRate.get(v.key) === Infinity;
    if (!already && this.fullRate.size >= MAX_FULL_RATE) return;
    this.fullRate.set(v.key, Infinity);
    if (already) return;
    try {
      // The context of the alert: what was kept from before_alert_ms before it (by reading time) goes up in full.
      const r = this.held.release(v.key, v.ts - this.cfg.before_alert_ms, Number.MAX_SAFE_INTEGER, { reason: 'alert', by: v.modelId });
      this.stats.released += r.released;
      this.log.info({ sensor: v.key, model: v.modelId, released: r.released }, 'summary mode: alert raised, uploading the sensor in full');
    } catch (err) {
      this.log.warn({ err, sensor: v.key }, 'summary mode: could not release the readings before the alert (they stay kept and summarized)');
    }
  }

  snapshot(): Record<string, unknown> {
    return { ...this.stats, full_rate: [...this.fullRate.keys()].slice(0, 50), ...this.held.stats() };
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.summarize();
  }
}

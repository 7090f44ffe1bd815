import { READING_FLAGS } from '../identity/batch-v3.js';
import type { GuardStore, MaintenanceRow } from '../store/guard-store.js';
import { topicMatches } from '../util/topic-filter.js';
import type { GuardBatch, GuardCheck, GuardReports } from './check.js';

/** Whether a maintenance target covers a sensor: the sensor itself, any sensor below it (`pump1` covers `pump1/temp`), or a sensor of the asset. */
export function maintenanceCovers(target: string, sensor: string, assets: Readonly<Record<string, readonly string[]>>): boolean {
  if (sensor === target || sensor.startsWith(`${target}/`)) return true;
  return assets[target]?.some((f) => topicMatches(f, sensor)) ?? false;
}

/**
 * Maintenance windows (`edge-agent maintenance start SENSOR|ASSET [--for 2h]`): the readings of
 * the sensors they cover are flagged maintenance (§12.3 bit 6), so the score stage neither learns
 * from them nor raises alerts on them (an operator cleaning a rain gauge makes no "rain"). Each
 * start and stop is an event (maintenance.start / maintenance.stop, §12.5).
 */
export class MaintenanceBook implements GuardCheck {
  readonly name = 'maintenance';
  private windows: MaintenanceRow[];

  constructor(
    private readonly store: GuardStore,
    private readonly reports: GuardReports,
    private readonly assets: Readonly<Record<string, readonly string[]>>,
  ) {
    this.windows = store.maintenance();
  }

  start(target: string, until: number | null, now: number, by: string): string {
    if (!this.store.startMaintenance(target, now, until, by)) return `refused: ${this.windows.length} maintenance windows are open (at most that many)`;
    this.windows = this.store.maintenance();
    this.reports.event({ kind: 'maintenance.start', key: target, ts: now, detail: { until: until ?? 0, by } });
    return until === null ? 'started, until stopped' : `started until ${new Date(until).toISOString()}`;
  }

  stop(target: string, now: number, by: string): string {
    if (!this.store.stopMaintenance(target)) return `no maintenance window open for ${target}`;
    this.windows = this.store.maintenance();
    this.reports.event({ kind: 'maintenance.stop', key: target, ts: now, detail: { until: now, by } });
    return 'stopped';
  }

  inspect(b: GuardBatch): void {
    if (this.windows.length === 0) return;
    b.readings.forEach((r, i) => {
      if (this.windows.some((w) => (w.until === null || b.now < w.until) && maintenanceCovers(w.target, r.sensor, this.assets))) b.flags[i]! |= READING_FLAGS.maintenance;
    });
  }

  /** Windows whose time is up close by themselves. */
  tick(now: number): void {
    for (const w of this.windows) if (w.until !== null && now >= w.until) this.stop(w.target, now, 'timer');
  }
}

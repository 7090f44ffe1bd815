import { BoundedMap, MAX_TRACKED_SENSORS, type GuardBatch, type GuardCheck, type GuardReports } from './check.js';
import type { SourcePolicy } from './config.js';
import { sensorQuarantineKey, type QuarantineBook } from './quarantine.js';

/** The sender an origin names: a serial session `SOURCE:session:UID/N` is the device `SOURCE:session:UID` (a reboot is no move). */
export function senderOf(origin: string): string {
  return origin.replace(/^([^:]+:session:[^/]+)\/\d+$/, '$1');
}

/**
 * A sensor whose readings suddenly come from another origin of the same source (another CoAP
 * address, another MQTT topic branch through a SenML name, another serial device) is either moved
 * or spoofed: event sensor.origin_change, and the sensor is quarantined (reason origin_change)
 * until it has been quiet for quiet_s; after that its new origin is the one it is known by.
 */
export class OriginWatch implements GuardCheck {
  readonly name = 'origin';
  private readonly origins = new BoundedMap<string>(MAX_TRACKED_SENSORS);

  constructor(
    private readonly book: QuarantineBook,
    private readonly reports: GuardReports,
    private readonly policyOf: (source: string) => SourcePolicy,
  ) {}

  inspect(b: GuardBatch): void {
    let reported: Set<string> | undefined;
    for (let i = 0; i < b.readings.length; i++) {
      const r = b.readings[i]!;
      const key = b.keys[i]!;
      const sender = senderOf(b.origin);
      const before = this.origins.get(key);
      if (before === sender) continue;
      this.origins.set(key, sender);
      if (before === undefined || reported?.has(r.sensor)) continue;
      (reported ??= new Set()).add(r.sensor);
      this.reports.event({ kind: 'sensor.origin_change', key: r.sensor, ts: b.now, detail: { from: before.slice(0, 256), to: sender.slice(0, 256) } }, 'origin_changes');
      if (this.policyOf(b.source).quarantine) this.book.start(sensorQuarantineKey(r.sensor), 'origin_change', b.now);
    }
  }
}

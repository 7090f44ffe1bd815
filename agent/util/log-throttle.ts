import type { Logger } from 'pino';

/**
 * Warnings that can repeat per message (a sensor publishing garbage at 10 Hz) are logged at most
 * once per `everyMs` per key: the first at once with its details, then one line with how many
 * were suppressed since. A log must not fill the SD card it is meant to help with.
 */
export class ThrottledWarn {
  private readonly seen = new Map<string, { lastAt: number; suppressed: number }>();

  constructor(
    private readonly log: Logger,
    private readonly everyMs = 60_000,
    private readonly maxKeys = 1000,
  ) {}

  warn(key: string, fields: Record<string, unknown>, msg: string, now = Date.now()): void {
    const s = this.seen.get(key);
    if (s && now - s.lastAt < this.everyMs) {
      s.suppressed++;
      return;
    }
    if (!s && this.seen.size >= this.maxKeys) this.seen.clear();
    this.log.warn({ ...fields, ...(s && s.suppressed > 0 ? { suppressed: s.suppressed, suppressed_for_s: Math.round((now - s.lastAt) / 1000) } : {}) }, msg);
    this.seen.set(key, { lastAt: now, suppressed: 0 });
  }
}

/** The first `max` characters of a payload, printable: enough to recognise it in a log line. */
export function excerpt(payload: Uint8Array, max = 80): string {
  const text = Buffer.from(payload.subarray(0, max * 4)).toString('utf8');
  const clean = text.replace(/[^\x20-\x7e]/g, '.');
  return clean.length > max ? `${clean.slice(0, max)}...` : clean;
}

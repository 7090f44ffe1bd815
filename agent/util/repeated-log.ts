import type { Logger } from '../log.js';

/** SQLite result codes (and errno names) that are conditions we can name: no stack trace for them. */
const NAMED_CODES = new Set(['SQLITE_FULL', 'SQLITE_BUSY', 'SQLITE_IOERR', 'SQLITE_READONLY', 'ENOSPC', 'EROFS', 'EIO', 'STORE_FULL']);

export function errorCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** SQLITE_FULL (or ENOSPC from the file system): the disk, or SQLite's page limit, is full. */
export function isStoreFull(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e !== undefined && e !== null && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = errorCode(e);
    if (code === 'SQLITE_FULL' || code === 'ENOSPC' || code === 'STORE_FULL') return true;
  }
  return false;
}

/** The log fields of an error: its message and code for a condition we can name, the whole error (stack) otherwise. */
export function errorFields(err: unknown): Record<string, unknown> {
  if (err === undefined) return {};
  const code = errorCode(err);
  if (code !== undefined && NAMED_CODES.has(code)) return { error: (err as Error).message, code };
  return { err };
}

/**
 * One failure that may repeat many times a second (a full disk fails every commit): logged the
 * first time, then once per `windowMs` at most with how many times it happened meanwhile, and
 * once more when it stops (`recovered`). On a full SD card the log must not fill what is left.
 */
export class RepeatedLog {
  private count = 0;
  private suppressed = 0;
  private lastLoggedAt = -Infinity;
  private firstAt = 0;

  constructor(
    private readonly log: Logger,
    private readonly level: 'error' | 'warn',
    private readonly message: string,
    private readonly windowMs = 60_000,
  ) {}

  /** How many times it happened since it started (0 while all is well). */
  get occurrences(): number {
    return this.count;
  }

  report(err: unknown, fields: Record<string, unknown> = {}): void {
    const now = performance.now();
    if (this.count === 0) this.firstAt = now;
    this.count++;
    if (now - this.lastLoggedAt < this.windowMs) {
      this.suppressed++;
      return;
    }
    const repeats = this.suppressed > 0 ? { repeated: this.suppressed, over_s: Math.round((now - this.lastLoggedAt) / 1000) } : {};
    this.log[this.level]({ ...fields, ...errorFields(err), ...repeats }, this.suppressed === 0 && this.count === 1 ? this.message : `${this.message} (repeated)`);
    this.suppressed = 0;
    this.lastLoggedAt = now;
  }

  /**
   * The operation worked again: one line with the total, when it had failed. Rate-limited with
   * the failures, so an operation that fails every other time still logs once per window.
   */
  recovered(fields: Record<string, unknown> = {}): void {
    if (this.count === 0) return;
    const now = performance.now();
    if (now - this.lastLoggedAt >= this.windowMs) {
      this.log.info({ ...fields, failures: this.count, for_s: Math.round((now - this.firstAt) / 1000) }, `recovered: ${this.message}`);
      this.lastLoggedAt = now;
      this.suppressed = 0;
    }
    this.count = 0;
  }
}

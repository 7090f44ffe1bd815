import { readFileSync } from 'node:fs';
import type { Db } from './database.js';
import { setMeta } from './meta.js';

const WINDOW_MS = 3_600_000;
const MIN_WINDOW_MS = 60_000;

/** write_bytes of /proc/self/io: what this process sent to storage after the page cache (Linux). */
export function processWriteBytes(): number | undefined {
  try {
    const m = readFileSync('/proc/self/io', 'utf8').match(/^write_bytes:\s+(\d+)/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/**
 * SD-card wear: bytes the agent writes to storage, per hour over the last hour, and in total
 * in the persistent counter `store_bytes_written` (so it survives restarts and is exported with
 * the other counters). The store is the only file the agent writes, so the process's
 * write_bytes is the store's: WAL frames, checkpoints, and the fsyncs of group commits.
 */
export class StoreWriteMeter {
  private last: number | undefined;
  private readonly samples: { at: number; total: number }[] = [];
  private total = 0;
  private readonly add;

  constructor(
    private readonly db: Db,
    private readonly read: () => number | undefined = processWriteBytes,
  ) {
    this.add = db.prepare(
      "INSERT INTO counters (name, label, value) VALUES ('store_bytes_written', '', ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
    );
    this.last = read();
    this.samples.push({ at: performance.now(), total: 0 });
  }

  /**
   * record() and the status snapshot (meta agent_snapshot, made by `snapshot` after the record so it
   * carries the new rates) in one transaction: one fsync instead of two (flash wear, issue 13).
   */
  recordWithSnapshot(snapshot: () => string): void {
    this.db.transaction(() => {
      this.record();
      setMeta(this.db, 'agent_snapshot', snapshot());
    })();
  }

  /** Called every few seconds (with the status snapshot). */
  record(): void {
    const now = this.read();
    if (now === undefined || this.last === undefined) return;
    const delta = Math.max(0, now - this.last);
    this.last = now;
    this.total += delta;
    if (delta > 0) this.add.run(delta);
    const at = performance.now();
    this.samples.push({ at, total: this.total });
    while (this.samples.length > 2 && at - this.samples[1]!.at >= WINDOW_MS) this.samples.shift();
  }

  rates(): { written_bytes: number; written_bytes_per_hour: number | null; projected_gb_per_day: number | null } {
    const first = this.samples[0]!;
    const lastSample = this.samples[this.samples.length - 1]!;
    const span = lastSample.at - first.at;
    const perHour = this.last === undefined || span < MIN_WINDOW_MS ? null : Math.round(((lastSample.total - first.total) / span) * 3_600_000);
    return { written_bytes: this.total, written_bytes_per_hour: perHour, projected_gb_per_day: projectedGbPerDay(perHour) };
  }
}

export interface StoreWrites {
  /** Bytes the agent has written to storage over its life (the persistent counter store_bytes_written). */
  written_bytes: number;
  /** Over the last hour (at least a minute) of the running agent, from its last status snapshot; null before. */
  written_bytes_per_hour: number | null;
  /** written_bytes_per_hour projected over a day, in GB (10^9 bytes): the SD-card wear figure. */
  projected_gb_per_day: number | null;
}

/** The write figures as another process sees them (status, the status page's worker): counter and snapshot. */
export function readStoreWrites(db: Db): StoreWrites {
  const total = (db.prepare("SELECT value FROM counters WHERE name = 'store_bytes_written' AND label = ''").pluck().get() as number | undefined) ?? 0;
  let perHour: number | null = null;
  const raw = db.prepare("SELECT value FROM meta WHERE key = 'agent_snapshot'").pluck().get() as string | undefined;
  if (raw) {
    try {
      const v = (JSON.parse(raw) as { store?: { written_bytes_per_hour?: unknown } }).store?.written_bytes_per_hour;
      perHour = typeof v === 'number' && Number.isFinite(v) ? v : null;
    } catch {
      perHour = null; // a snapshot from an older agent, or cut short by a crash: no rate until the next one
    }
  }
  return { written_bytes: total, written_bytes_per_hour: perHour, projected_gb_per_day: projectedGbPerDay(perHour) };
}

export function projectedGbPerDay(bytesPerHour: number | null): number | null {
  return bytesPerHour === null ? null : +((bytesPerHour * 24) / 1e9).toFixed(3);
}

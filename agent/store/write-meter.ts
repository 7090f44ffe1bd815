import { readFileSync } from 'node:fs';
import type { Db } from './database.js';

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

  constructor(db: Db, private readonly read: () => number | undefined = processWriteBytes) {
    this.add = db.prepare(
      "INSERT INTO counters (name, label, value) VALUES ('store_bytes_written', '', ?) ON CONFLICT (name, label) DO UPDATE SET value = value + excluded.value",
    );
    this.last = read();
    this.samples.push({ at: performance.now(), total: 0 });
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

  rates(): { written_bytes: number; written_bytes_per_hour: number | null } {
    const first = this.samples[0]!;
    const lastSample = this.samples[this.samples.length - 1]!;
    const span = lastSample.at - first.at;
    return {
      written_bytes: this.total,
      written_bytes_per_hour: this.last === undefined || span < MIN_WINDOW_MS ? null : Math.round(((lastSample.total - first.total) / span) * 3_600_000),
    };
  }
}

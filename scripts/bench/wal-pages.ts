/**
 * What one reading commit costs the flash, through the store's own code (ReadingStore.commit,
 * BatchStore.cutBatch on a store made by openDatabase with every migration): WAL frames and
 * write_bytes (/proc/self/io) per commit, for a given number of readings per commit, with a
 * batch cut every 10 commits as the agent's 1 s commits and batch.max_age_ms do. No agent, no
 * broker: the store alone, so the fixed cost of a commit can be told from the rest of the run.
 *
 *   node dist/scripts/bench/wal-pages.js [--readings 20] [--commits 300] [--without-index NAME ...]
 *
 * `--without-index` drops one of the readings table's indexes from the throwaway store first, to
 * attribute the frames (docs/performance.md, "Flash wear, fourth round"). write_bytes counts the
 * page cache's 4 KiB pages each time one is dirtied after being written out, so a commit that
 * appends 13 frames of 1,048 bytes to the WAL costs about 4 pages plus the one it shares with the
 * commit before it.
 */
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Identity } from '../../agent/identity/keys.js';
import { batchEncoder } from '../../agent/pipeline/batch-encoder.js';
import { BatchStore } from '../../agent/store/batch-store.js';
import { openDatabase } from '../../agent/store/database.js';
import { bindDevice } from '../../agent/store/meta.js';
import { ReadingStore } from '../../agent/store/reading-store.js';
import { intArg } from './lib/args.js';
import { writeBytes } from './lib/procfs.js';

const READINGS_INDEXES = ['readings_unbatched', 'readings_batch', 'readings_source_seq', 'readings_time_sensor'];
const perCommit = intArg('readings', 20);
const commits = intArg('commits', 300);
const without = process.argv.flatMap((a, i) => (a === '--without-index' ? [process.argv[i + 1] ?? ''] : []));
for (const name of without) if (!READINGS_INDEXES.includes(name)) throw new Error(`--without-index: "${name}" is not one of ${READINGS_INDEXES.join(', ')}`);

const dir = mkdtempSync(join(tmpdir(), 'ea-wal-pages-'));
const path = join(dir, 'edge-agent.db');
const db = openDatabase(path);
// The agent's WAL limits (store/budget.ts) would checkpoint inside the run; here the WAL only grows, so it can be measured.
db.pragma('wal_autocheckpoint = 1000000');
for (const name of without) db.exec(`DROP INDEX ${name}`); // a throwaway store, for attribution only
const id = Identity.generate();
bindDevice(db, id.deviceId, 'x');
const readings = new ReadingStore(db, 1);
const batches = new BatchStore(db);
const encoder = batchEncoder(id, { bootCounter: 1, clockSynced: true, now: 1 });
const T0 = 1_763_000_000_000;
const sensors = 20;
let k = 0;
/** One commit of `perCommit` readings of 20 sensors at 1 Hz, not in step (as the low-rate bench publishes them). */
function commitOnce(): void {
  const rs = Array.from({ length: perCommit }, (_, i) => {
    const n = k * perCommit + i;
    return { sensor: `site7/pump${n % sensors}/temperature`, ts: T0 + Math.floor(n / sensors) * 1000 + (n % sensors) * 37, timeSource: 'sensor' as const, value: 20 + (n % 7) / 10, unit: 'Cel' };
  });
  readings.commit([{ source: 'mqtt', readings: rs }], rs.at(-1)!.ts);
  k++;
  if (k % 10 === 0) batches.cutBatch(10_000, encoder);
}
const walBytes = () => statSync(`${path}-wal`).size;
for (let i = 0; i < 100; i++) commitOnce(); // past the first pages of every B-tree
const wal0 = walBytes();
const written0 = writeBytes()!;
for (let i = 0; i < commits; i++) commitOnce();
const page = db.pragma('page_size', { simple: true }) as number;
const frames = (walBytes() - wal0) / (page + 24) / commits;
const bytes = (writeBytes()! - written0) / commits;
const perDay = (bytes * 86_400) / (perCommit / sensors) / 1e6; // one commit per perCommit/20 seconds
db.close();
rmSync(dir, { recursive: true, force: true });
process.stdout.write(
  `${JSON.stringify({ readings_per_commit: perCommit, without_index: without, page_size: page, wal_frames_per_commit: +frames.toFixed(1), write_bytes_per_commit: Math.round(bytes), mb_per_day_20x1hz_store_only: Math.round(perDay) })}\n`,
);

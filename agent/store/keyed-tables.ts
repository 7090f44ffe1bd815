import type { Db } from './database.js';

/**
 * Tables with one row per sensor or stream id grow with every new id a flood of senders invents
 * (issue 20: "every table that grows bounded"). Each is held to a byte share of its own
 * (README "Disk budget", store/budget-shares.ts): rows are counted at the characters of their key
 * plus KEYED_ROW_OVERHEAD_BYTES, and the least recently written go first.
 *
 * Measured with dbstat on sensor_seq (20,000 rows): 33.6 bytes a row with 12 key characters,
 * 54.9 with 31, 315 with 260: 22-55 bytes of overhead; 32 is the planning figure for the
 * typical ids, and the shares below leave the long-id case its room through the 90 % prune mark.
 */
export const KEYED_ROW_OVERHEAD_BYTES = 32;
/** Last seq per (source, sensor): about 5,000 sensors with 20-character ids. A forgotten sensor's next reading starts its gap count afresh (counter seq_forgotten). */
export const SENSOR_SEQ_SHARE_BYTES = 256 * 1024;
/** Stream positions per (source, stream) of the serial source (device/session/sensor): old boot sessions go first. */
export const CURSORS_SHARE_BYTES = 256 * 1024;
/** Drops per sensor waiting for a batch: past the share the smallest are folded into the sensor `(other)`, so the total reported stays exact. */
export const DROPS_UNREPORTED_SHARE_BYTES = 128 * 1024;
/** Pruned back to this share of the cap, so the next new id does not prune again at once. */
const PRUNE_TO = 0.9;
/** Label the smallest unreported drops are folded into (as counters are: store/counter-cap.ts). */
export const OTHER_SENSOR = '(other)';

interface KeyedTable {
  table: 'sensor_seq' | 'source_cursors';
  /** The second key column (the first is `source`). */
  key: 'sensor' | 'stream';
}

const rowBytes = (key: string) => `length(source) + length(${key}) + ${KEYED_ROW_OVERHEAD_BYTES}`;

/** Bytes a keyed table is counted at. */
export function keyedBytes(db: Db, t: KeyedTable): number {
  return db.prepare(`SELECT coalesce(sum(${rowBytes(t.key)}), 0) FROM ${t.table}`).pluck().get() as number;
}

/**
 * Deletes the least recently written rows of `t` until it is counted at no more than
 * `targetBytes`; `bytes` is what it is counted at now. Returns the rows deleted and the bytes left.
 */
export function pruneKeyed(db: Db, t: KeyedTable, bytes: number, targetBytes: number): { rows: number; bytes: number } {
  if (bytes <= targetBytes) return { rows: 0, bytes };
  const oldest = db.prepare(`SELECT source, ${t.key} AS k, ${rowBytes(t.key)} AS b FROM ${t.table} ORDER BY updated_at, source, ${t.key}`);
  const del = db.prepare(`DELETE FROM ${t.table} WHERE source = ? AND ${t.key} = ?`);
  const doomed: { source: string; k: string }[] = [];
  let left = bytes;
  for (const row of oldest.iterate() as IterableIterator<{ source: string; k: string; b: number }>) {
    if (left <= targetBytes) break;
    doomed.push(row);
    left -= row.b;
  }
  for (const d of doomed) del.run(d.source, d.k);
  return { rows: doomed.length, bytes: left };
}

export const SENSOR_SEQ: KeyedTable = { table: 'sensor_seq', key: 'sensor' };
export const CURSORS: KeyedTable = { table: 'source_cursors', key: 'stream' };

/**
 * sensor_seq held to its share as rows are added, inside the commit that adds them: a flood of
 * 20,000 new ids a second would otherwise add 800 KB between two housekeeping passes. The bytes
 * are kept in memory, so a known sensor costs nothing more.
 */
export class SensorSeqShare {
  private bytes: number;

  constructor(
    private readonly db: Db,
    private readonly shareBytes = SENSOR_SEQ_SHARE_BYTES,
  ) {
    this.bytes = keyedBytes(db, SENSOR_SEQ);
  }

  /** A row for a new (source, sensor) was written; returns the rows forgotten to stay in the share. */
  added(source: string, sensor: string): number {
    this.bytes += source.length + sensor.length + KEYED_ROW_OVERHEAD_BYTES;
    if (this.bytes <= this.shareBytes) return 0;
    const r = pruneKeyed(this.db, SENSOR_SEQ, this.bytes, this.shareBytes * PRUNE_TO);
    this.bytes = r.bytes;
    return r.rows;
  }
}

/** source_cursors to its share (housekeeping); returns the rows deleted. */
export function capCursors(db: Db, shareBytes = CURSORS_SHARE_BYTES): number {
  const bytes = keyedBytes(db, CURSORS);
  return bytes > shareBytes ? db.transaction(() => pruneKeyed(db, CURSORS, bytes, shareBytes * PRUNE_TO).rows)() : 0;
}

/**
 * drops_unreported to its share: the smallest counts are folded into the sensor `(other)`; the
 * next batch carries the folded total under that name (wire-format.md §4.5). Returns the rows folded.
 */
export function capDropsUnreported(db: Db, shareBytes = DROPS_UNREPORTED_SHARE_BYTES): number {
  const bytes = db.prepare(`SELECT coalesce(sum(length(sensor) + ${KEYED_ROW_OVERHEAD_BYTES}), 0) FROM drops_unreported`).pluck().get() as number;
  if (bytes <= shareBytes) return 0;
  return db.transaction(() => {
    const rows = db
      .prepare(`SELECT sensor, count, length(sensor) + ${KEYED_ROW_OVERHEAD_BYTES} AS b FROM drops_unreported WHERE sensor != ? ORDER BY count, sensor`)
      .all(OTHER_SENSOR) as { sensor: string; count: number; b: number }[];
    const del = db.prepare('DELETE FROM drops_unreported WHERE sensor = ?');
    let left = bytes + (OTHER_SENSOR.length + KEYED_ROW_OVERHEAD_BYTES);
    let folded = 0;
    let total = 0;
    for (const r of rows) {
      if (left <= shareBytes * PRUNE_TO) break;
      del.run(r.sensor);
      total += r.count;
      left -= r.b;
      folded++;
    }
    db.prepare('INSERT INTO drops_unreported (sensor, count) VALUES (?, ?) ON CONFLICT (sensor) DO UPDATE SET count = count + excluded.count').run(OTHER_SENSOR, total);
    return folded;
  })();
}

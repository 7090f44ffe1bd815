import { closeSync, fstatSync, fsyncSync, ftruncateSync, openSync, statfsSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { dirname } from 'node:path';
import type { Logger } from '../log.js';
import { errorFields } from '../util/repeated-log.js';

/** The ballast never takes more than this, nor less than the floor (a DELETE and a checkpoint need room). */
export const RESERVE_MAX_BYTES = 2 * 1024 * 1024;
export const RESERVE_MIN_BYTES = 256 * 1024;
/** At start-up only this slice is given back first: enough for the boot counter and a few meta writes. */
export const START_SLICE_BYTES = 64 * 1024;

/** An eighth of the file system, within the bounds: 1 MiB on an 8 MiB card, 2 MiB on anything from 16 MiB. */
export function reserveSizeFor(dir: string): number {
  try {
    const fs = statfsSync(dir);
    return Math.max(RESERVE_MIN_BYTES, Math.min(RESERVE_MAX_BYTES, Math.floor((fs.blocks * fs.bsize) / 8 / 65536) * 65536));
  } catch {
    return RESERVE_MAX_BYTES;
  }
}

/**
 * A ballast file beside the store (`<store>.reserve`): on a full disk even a DELETE needs room
 * in the WAL and a checkpoint room in the database file, so the agent gives this space back
 * (all or a slice) when SQLite says SQLITE_FULL, and writes it back once the disk has room again.
 * That turns a full disk into a state the agent lives through any number of times.
 */
export class DiskReserve {
  readonly path: string;
  readonly size: number;
  private readonly dir: string;
  private releases = 0;

  constructor(
    storePath: string,
    private readonly log: Logger,
    size?: number,
  ) {
    this.path = `${storePath}.reserve`;
    this.dir = dirname(storePath);
    this.size = size ?? reserveSizeFor(this.dir);
  }

  /** Bytes the ballast holds now (0 when it is missing). */
  held(): number {
    try {
      return statSync(this.path).size;
    } catch {
      return 0;
    }
  }

  freeBytes(): number {
    try {
      const fs = statfsSync(this.dir);
      return fs.bavail * fs.bsize;
    } catch {
      return 0;
    }
  }

  /** Gives back `bytes` of the ballast (all of it by default); returns what was given back. */
  release(bytes = Infinity, why = 'disk full'): number {
    const held = this.held();
    if (held === 0 || bytes <= 0) return 0;
    const keep = Math.max(0, held - bytes);
    try {
      if (keep === 0) unlinkSync(this.path);
      else {
        const fd = openSync(this.path, 'r+');
        try {
          ftruncateSync(fd, keep);
        } finally {
          closeSync(fd);
        }
      }
    } catch (err) {
      this.log.error({ ...errorFields(err), path: this.path }, 'could not release the disk reserve');
      return 0;
    }
    this.releases++;
    this.log.warn({ path: this.path, released_bytes: held - keep, left_bytes: keep }, `${why}: released the disk reserve to make room`);
    return held - keep;
  }

  /**
   * Writes the ballast back to its full size when the disk has room for it and `marginBytes`
   * more (so the store is not left with nothing). True when the ballast is complete. `upTo`
   * writes back only that much of it (the part a checkpoint needs, when there is no room for all).
   */
  restore(marginBytes: number, upTo = this.size): boolean {
    const held = this.held();
    const target = Math.min(this.size, upTo);
    if (held >= target) return held >= this.size;
    if (this.freeBytes() < target - held + marginBytes) return false;
    let fd: number | undefined;
    try {
      fd = openSync(this.path, held > 0 ? 'r+' : 'w', 0o600);
      const chunk = Buffer.alloc(64 * 1024);
      // Real blocks, not a sparse file: tmpfs and ext4 would otherwise hold nothing back.
      for (let at = fstatSync(fd).size; at < target; at += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, target - at), at);
      fsyncSync(fd);
    } catch (err) {
      // Space went while writing: give back what was written, the store needs it more.
      if (fd !== undefined) {
        try {
          ftruncateSync(fd, held);
        } catch {
          // the file is closed below; the next restore tries again
        }
      }
      this.log.warn({ ...errorFields(err), path: this.path }, 'could not write the disk reserve back yet; will retry');
      return false;
    } finally {
      if (fd !== undefined) closeSync(fd);
    }
    if (target < this.size) {
      this.log.info({ path: this.path, bytes: target, full_bytes: this.size }, 'disk reserve partly re-established (the part a checkpoint needs); the rest follows when the disk has room');
      return false;
    }
    this.log.info({ path: this.path, bytes: this.size }, this.releases === 0 ? 'disk reserve in place' : 'disk reserve re-established');
    return true;
  }
}

import { spawnSync } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface SmallDisk {
  dir: string;
  freeBytes(): number;
  /** Fills what is left with a file of zeros, as another program on the card would; returns its size. */
  fillUp(name?: string): number;
  release(): void;
}

/** A real, small file system: ENOSPC as a full SD card gives it (needs root, as CI has). Undefined when mount is refused. */
export function smallDisk(sizeMb: number): SmallDisk | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'ea-smalldisk-'));
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', `size=${sizeMb}m`, 'tmpfs', dir], { encoding: 'utf8' });
  if (r.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  const freeBytes = () => {
    const s = statfsSync(dir);
    return s.bavail * s.bsize;
  };
  return {
    dir,
    freeBytes,
    fillUp(name = 'filler') {
      const fd = openSync(join(dir, name), 'a');
      const chunk = Buffer.alloc(4096);
      let written = 0;
      try {
        for (;;) written += writeSync(fd, chunk);
      } catch {
        // ENOSPC: full
      } finally {
        closeSync(fd);
      }
      return written;
    },
    release: () => {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

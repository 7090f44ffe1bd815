import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/**
 * libfaketime (Debian package `faketime`): LD_PRELOADed into an agent process, it moves the
 * wall clock (CLOCK_REALTIME, so Date.now()) and leaves the monotonic clock alone, as a real
 * clock step by NTP or an RTC-less boot does. Jumps while running go through a timestamp file.
 */
const CANDIDATES = ['/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/aarch64-linux-gnu/faketime/libfaketimeMT.so.1', '/usr/lib/faketime/libfaketimeMT.so.1'];

export const LIBFAKETIME = CANDIDATES.find((p) => existsSync(p));

/** Environment for a process whose wall clock starts at `start` (libfaketime syntax, e.g. "@1970-01-02 00:00:00"). */
export function fakeClockEnv(start: string): NodeJS.ProcessEnv {
  if (!LIBFAKETIME) throw new Error('libfaketime not found: apt-get install faketime');
  return { LD_PRELOAD: LIBFAKETIME, FAKETIME: start, FAKETIME_DONT_FAKE_MONOTONIC: '1' };
}

/** A clock that can be stepped while the process runs: `jump("-3d")` is read within 100 ms. */
export function jumpingClock(dir: string): { env: NodeJS.ProcessEnv; jump(offset: string): void } {
  if (!LIBFAKETIME) throw new Error('libfaketime not found: apt-get install faketime');
  const file = join(dir, 'faketime.rc');
  writeFileSync(file, '+0\n');
  return {
    env: { LD_PRELOAD: LIBFAKETIME, FAKETIME_TIMESTAMP_FILE: file, FAKETIME_CACHE_DURATION: '0', FAKETIME_NO_CACHE: '1', FAKETIME_DONT_FAKE_MONOTONIC: '1' },
    jump: (offset) => writeFileSync(file, `${offset}\n`),
  };
}

import { readFileSync } from 'node:fs';

/** Resident set size of a process in MiB (VmRSS in /proc/PID/status). */
export function rssMb(pid: number): number | undefined {
  try {
    const m = readFileSync(`/proc/${pid}/status`, 'utf8').match(/^VmRSS:\s+(\d+) kB/m);
    return m ? Number(m[1]) / 1024 : undefined;
  } catch {
    return undefined; // the process is gone
  }
}

/** Bytes this process caused to be written to storage (write_bytes in /proc/PID/io: after the page cache, what reaches the SD card). */
export function writeBytes(pid: number | 'self' = 'self'): number | undefined {
  try {
    const m = readFileSync(`/proc/${pid}/io`, 'utf8').match(/^write_bytes:\s+(\d+)/m);
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Samples a process's RSS every `everyMs` until stopped; returns the samples in MiB. */
export function sampleRss(pid: number, everyMs = 200): { stop(): number[] } {
  const samples: number[] = [];
  const take = () => {
    const v = rssMb(pid);
    if (v !== undefined) samples.push(v);
  };
  take();
  const timer = setInterval(take, everyMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return samples;
    },
  };
}

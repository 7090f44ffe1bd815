import { execFile, execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';

/** What the OS says about the wall clock: synced, known not synced, or nobody could tell. */
export interface ClockReading {
  state: 'synced' | 'unsynced' | 'unknown';
  /** Who said so, and what they said (shown in /healthz and doctor). */
  source: string;
}

/** One way of asking the OS: a command and how to read its answer (undefined: it could not tell). */
interface ClockAsk {
  name: string;
  cmd: string;
  args: string[];
  parse(stdout: string): ClockReading | undefined;
}

const PROBE_TIMEOUT_MS = 2000;

// struct timex is read with modes = 0, which needs no privilege (adjtimex(2)); the kernel's clock
// state is not namespaced, so inside a container this is the host's NTP discipline.
// Syscall numbers: x86-64 159, arm64 171, 32-bit arm and x86 124 (unistd tables).
const ADJTIMEX_SYSCALL: Partial<Record<string, number>> = { x64: 159, arm64: 171, arm: 124, ia32: 124 };
// adjtimex(2): TIME_ERROR is returned while STA_UNSYNC (0x40) is set: nothing disciplines the clock.
const TIME_ERROR = 5;
const STA_UNSYNC = 0x40;

/** The kernel's answer through perl (kernelAsk), on this machine's architecture; undefined where no syscall number is known. */
export function askKernel(): ClockReading | undefined {
  const ask = kernelAsk();
  if (!ask) return undefined;
  try {
    return ask.parse(execFileSync(ask.cmd, ask.args, { timeout: PROBE_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] }).toString());
  } catch {
    return undefined;
  }
}

/** perl is in Debian's essential set (perl-base), so this works on a bare board and in a slim container without root. */
function kernelAsk(): ClockAsk | undefined {
  const nr = ADJTIMEX_SYSCALL[process.arch];
  if (nr === undefined) return undefined;
  const word = process.arch === 'x64' || process.arch === 'arm64' ? 'q' : 'l';
  // struct timex: int modes, (pad), long offset, freq, maxerror, esterror, int status.
  const pad = word === 'q' ? 'x4' : '';
  const script = `my $b="\\0" x 512; my $r=syscall(${nr},$b); die "adjtimex: $!\\n" if $r<0; my @f=unpack("l ${pad} ${word} ${word} ${word} ${word} l",$b); print "$r $f[5] $f[3]\\n"`;
  return {
    name: 'kernel adjtimex',
    cmd: 'perl',
    args: ['-e', script],
    parse(stdout) {
      const m = /^(-?\d+) (\d+) (\d+)$/.exec(stdout.trim());
      if (!m) return undefined;
      const [ret, status, maxErrUs] = [Number(m[1]), Number(m[2]), Number(m[3])];
      const err = `maximum error ${(maxErrUs / 1e6).toFixed(3)} s`;
      if (ret === TIME_ERROR || (status & STA_UNSYNC) !== 0) return { state: 'unsynced', source: `kernel (adjtimex): not synchronised (STA_UNSYNC set, ${err}): no NTP daemon disciplines this clock` };
      return { state: 'synced', source: `kernel (adjtimex): synchronised, ${err}` };
    },
  };
}

/** chronyc(1) "tracking": Leap status is "Not synchronised" until chronyd has a source. */
export function parseChronyTracking(out: string): ClockReading | undefined {
  const leap = /^Leap status\s*:\s*(.+)$/m.exec(out)?.[1]?.trim();
  if (!leap) return undefined;
  const ref = /^Reference ID\s*:\s*(.+)$/m.exec(out)?.[1]?.trim();
  if (leap === 'Not synchronised') return { state: 'unsynced', source: 'chronyc tracking: Leap status Not synchronised' };
  return { state: 'synced', source: `chronyc tracking: Leap status ${leap}${ref ? `, reference ${ref}` : ''}` };
}

/** The asks in order of authority: the daemon that keeps the clock first, the kernel's own flag last. */
function asks(): ClockAsk[] {
  const list: ClockAsk[] = [
    {
      name: 'timedatectl',
      cmd: 'timedatectl',
      args: ['show', '--property=NTPSynchronized', '--value'],
      parse: (out) => {
        const v = out.trim();
        if (v === 'yes') return { state: 'synced', source: 'timedatectl: NTPSynchronized=yes' };
        if (v === 'no') return { state: 'unsynced', source: 'timedatectl: NTPSynchronized=no' };
        return undefined;
      },
    },
    { name: 'chronyc tracking', cmd: 'chronyc', args: ['-n', 'tracking'], parse: parseChronyTracking },
  ];
  const kernel = kernelAsk();
  if (kernel) list.push(kernel);
  return list;
}

// systemd-timesyncd touches this file once it has synchronised (systemd-timesyncd.service(8)).
const TIMESYNCD_FLAG = '/run/systemd/timesync/synchronized';
const TIMESYNCD: ClockReading = { state: 'synced', source: `systemd-timesyncd (${TIMESYNCD_FLAG})` };
const NOBODY: ClockReading = {
  state: 'unknown',
  source: 'no timedatectl, chronyc or kernel (adjtimex through perl) answer',
};

/** Asks each in turn; a missing tool or one that cannot tell (no daemon) passes to the next. */
export function probeClock(): ClockReading {
  if (existsSync(TIMESYNCD_FLAG)) return TIMESYNCD;
  for (const ask of asks()) {
    try {
      const out = execFileSync(ask.cmd, ask.args, { timeout: PROBE_TIMEOUT_MS, stdio: ['ignore', 'pipe', 'ignore'] });
      const r = ask.parse(out.toString());
      if (r) return r;
    } catch {
      // not installed, no daemon behind it, or timed out: the next one may know
    }
  }
  return NOBODY;
}

/** probeClock off the event loop: the agent re-asks in the background while readings flow. */
export async function probeClockAsync(): Promise<ClockReading> {
  if (existsSync(TIMESYNCD_FLAG)) return TIMESYNCD;
  for (const ask of asks()) {
    const out = await new Promise<string | undefined>((resolve) => {
      execFile(ask.cmd, ask.args, { timeout: PROBE_TIMEOUT_MS }, (err, stdout) => resolve(err ? undefined : String(stdout)));
    });
    const r = out === undefined ? undefined : ask.parse(out);
    if (r) return r;
  }
  return NOBODY;
}

import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { askKernel, parseChronyTracking } from '../../agent/clock/clock-probe.js';

describe('clock probes (issue 16: works in a container, without timedatectl)', () => {
  it('reads chronyc tracking: Normal is synchronised, Not synchronised is not, a daemon error tells nothing', () => {
    const synced = 'Reference ID    : C0A80101 (192.168.1.1)\nStratum         : 3\nLeap status     : Normal\n';
    expect(parseChronyTracking(synced)).toEqual({ state: 'synced', source: 'chronyc tracking: Leap status Normal, reference C0A80101 (192.168.1.1)' });
    expect(parseChronyTracking('Reference ID    : 00000000 ()\nLeap status     : Not synchronised\n')).toMatchObject({ state: 'unsynced' });
    expect(parseChronyTracking('506 Cannot talk to daemon\n')).toBeUndefined();
  });

  it('asks the kernel (adjtimex, modes 0, no root) and agrees with its STA_UNSYNC flag as perl reads it', () => {
    const k = askKernel();
    expect(k, 'perl answered').toBeDefined();
    // The same syscall, independently: the return value 5 is TIME_ERROR (adjtimex(2)).
    const nr = { x64: 159, arm64: 171 }[process.arch as 'x64' | 'arm64'];
    const ret = Number(spawnSync('perl', ['-e', `my $b="\\0" x 512; print syscall(${nr},$b)`], { encoding: 'utf8' }).stdout);
    expect(k!.state).toBe(ret === 5 ? 'unsynced' : 'synced');
    expect(k!.source).toMatch(/^kernel \(adjtimex\): (not )?synchronised/);
  });
});

import Database from 'better-sqlite3';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { buildFirmwareTools, startPtyPair, startSimulator } from '../helpers/serial.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

interface IntervalEvent {
  id: number;
  key: string;
  detail: Record<string, string | number>;
}

/** The report.interval events the agent stored for the network (they go into the next signed batch). */
function intervalEvents(dir: string): IntervalEvent[] {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return (db.prepare("SELECT id, key, detail FROM events WHERE kind = 'report.interval' ORDER BY id").all() as { id: number; key: string; detail: string }[]).map((r) => ({ ...r, detail: JSON.parse(r.detail) }));
  } finally {
    db.close();
  }
}

/** Readings of `sensor` committed after reading id `after`. */
function countAfter(dir: string, sensor: string, after: number): number {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return db.prepare('SELECT count(*) FROM readings WHERE sensor = ? AND id > ?').pluck().get(sensor, after) as number;
  } finally {
    db.close();
  }
}

function lastReadingId(dir: string): number {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return (db.prepare('SELECT max(id) FROM readings').pluck().get() as number | null) ?? 0;
  } finally {
    db.close();
  }
}

describe('adaptive reporting over the firmware bridge (PROTOCOL.md §3.10-§3.11), g++-built simulator on a socat pty', () => {
  beforeAll(() => buildFirmwareTools());

  it('the policy sets each sensor’s interval at the device: one applied (the device then samples slower), one refused with its bounds', async () => {
    const ptys = await startPtyPair(tempDir('pty'));
    const dir = tempDir('agent');
    const init = cli(['init', '--data-dir', dir, '--serial-path', ptys.gateway]);
    expect(init.code, init.stderr).toBe(0);
    patchConfig(dir, [
      [
        ['adaptive', 'policy'],
        [
          { sensors: ['sim/s0'], healthy_interval_ms: 500, alert_interval_ms: 100 },
          // Faster than the board allows (--interval-min-ms 100): the device says no, with its range.
          { sensors: ['sim/s1'], healthy_interval_ms: 50, alert_interval_ms: 50 },
        ],
      ],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    // 2 sensors at 20 samples/s in all: each every 100 ms until the gateway says otherwise.
    const sim = startSimulator(['--path', ptys.device, '--sensors', '2', '--rate', '20', '--interval-min-ms', '100', '--interval-max-ms', '60000', '--reopen']);
    try {
      await agent.waitForReady();
      const events = await waitFor('a report.interval event for each sensor', () => {
        const e = intervalEvents(dir);
        return e.some((x) => x.key === 'sim/s0') && e.some((x) => x.key === 'sim/s1') ? e : undefined;
      }, 30_000, 200);
      const s0 = events.find((e) => e.key === 'sim/s0')!;
      const s1 = events.find((e) => e.key === 'sim/s1')!;
      expect(s0.detail, JSON.stringify(events)).toMatchObject({ interval_ms: 500, status: 'applied', via: 'serial:serial', reason: 'healthy', device_interval_ms: 500, min_ms: 100, max_ms: 60000 });
      expect(s1.detail, JSON.stringify(events)).toMatchObject({ interval_ms: 50, status: 'out_of_range', via: 'serial:serial', device_interval_ms: 100, min_ms: 100, max_ms: 60000 });
      await waitFor('the simulator to report the new period', () => /interval sensor=0 period=500/.test(sim.output()), 10_000);
      expect(sim.output()).not.toMatch(/interval sensor=1 period=(?!100\b)/); // the refused sensor kept its period
      expect(agent.output()).toMatch(/the device refused the reporting interval \(out_of_range\)/);
      // The device really samples slower: over the next 40 readings of the 100 ms sensor, the 500 ms one gives about 8.
      const mark = lastReadingId(dir);
      await waitFor('40 more readings of sim/s1', () => countAfter(dir, 'sim/s1', mark) >= 40, 30_000, 100);
      const slow = countAfter(dir, 'sim/s0', mark);
      const fast = countAfter(dir, 'sim/s1', mark);
      console.log(`adaptive serial: after SET_INTERVAL, sim/s0 (500 ms) gave ${slow} readings while sim/s1 (100 ms) gave ${fast}`);
      expect(slow).toBeLessThan(fast / 2);
      expect(slow).toBeGreaterThan(0);
      // Status shows what the device confirmed.
      const status = await waitFor('status with the adaptive intervals', () => {
        const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
        return s.adaptive?.intervals?.['sim/s0']?.applied === 500 ? s : undefined;
      }, 15_000, 200);
      expect(status.adaptive.intervals['sim/s1']).toMatchObject({ applied: null, wanted: 50 });
    } finally {
      sim.kill();
      await agent.stop('SIGKILL');
      await ptys.stop();
    }
  }, 120_000);

  it('a device that reboots comes back at its firmware period: the agent sees it in the new HELLO and sets the interval again', async () => {
    const ptys = await startPtyPair(tempDir('pty'));
    const dir = tempDir('agent');
    const init = cli(['init', '--data-dir', dir, '--serial-path', ptys.gateway]);
    expect(init.code, init.stderr).toBe(0);
    patchConfig(dir, [[['adaptive', 'policy'], [{ sensors: ['sim/s0'], healthy_interval_ms: 500, alert_interval_ms: 100 }]]]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    // One reboot after 1,200 samples (both sensors at 20 ms: 12 s before the gateway's first answer
    // could slow one); boot 1 maps index 1 to sim/s0 (the simulator rotates indexes).
    const sim = startSimulator(['--path', ptys.device, '--sensors', '2', '--rate', '100', '--count', '2400', '--reboots', '1', '--interval-min-ms', '10', '--interval-max-ms', '60000', '--reopen']);
    try {
      await agent.waitForReady();
      await waitFor('the simulator to apply 500 ms in boot 0', () => /interval sensor=0 period=500/.test(sim.output()), 60_000);
      expect(sim.output(), 'applied before the reboot').not.toMatch(/boot 1 session/);
      await waitFor('the reboot', () => /boot 1 session/.test(sim.output()), 90_000);
      await waitFor('500 ms applied again after the reboot, on the new index', () => /boot 1 session[\s\S]*interval sensor=1 period=500/.test(sim.output()), 60_000);
      const applied = await waitFor('two applied report.interval events for sim/s0', () => {
        const e = intervalEvents(dir).filter((x) => x.key === 'sim/s0' && x.detail.status === 'applied');
        return e.length >= 2 ? e : undefined;
      }, 30_000, 200);
      expect(applied.map((e) => e.detail.interval_ms)).toEqual([500, 500]);
      expect(agent.output()).toMatch(/the device reports another interval than it applied \(rebooted\?\); asking again/);
    } finally {
      sim.kill();
      await agent.stop('SIGKILL');
      await ptys.stop();
    }
  }, 180_000);
});

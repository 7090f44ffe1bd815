import Database from 'better-sqlite3';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { buildFirmwareTools, startPtyPair, startSimulator } from '../helpers/serial.js';
import { patchConfig, tempDir } from '../helpers/setup.js';
import { seededRandom } from '../helpers/seeded.js';

/** (sensor, seq) of every reading the agent stored, and how many rows. */
function storedSeqs(dir: string): { rows: number; uniq: number } {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return db.prepare("SELECT count(*) AS rows, count(DISTINCT sensor || '#' || seq) AS uniq FROM readings").get() as { rows: number; uniq: number };
  } finally {
    db.close();
  }
}

/** Once the last commits settled (`count` rows, or more when some were stored twice): `count` readings, no (sensor, seq) twice. */
async function expectEachStoredOnce(dir: string, count: number): Promise<void> {
  await waitFor(`${count} readings stored`, () => storedSeqs(dir).rows >= count, 30_000, 100).catch(() => undefined); // the assertion below says what is missing
  const status = cli(['status', '--data-dir', dir, '--json']).stdout;
  expect(storedSeqs(dir), `serial source: ${JSON.stringify(JSON.parse(status).sources.serial)}`).toEqual({ rows: count, uniq: count });
}

function agentOn(gateway: string, mode?: string): { dir: string; start(): LongRunning } {
  const dir = tempDir('agent');
  const r = cli(['init', '--data-dir', dir, '--serial-path', gateway, ...(mode ? ['--serial-mode', mode] : [])]);
  expect(r.code, r.stderr).toBe(0);
  return { dir, start: () => cliBackground(['run', '--data-dir', dir]) };
}

describe('serial sensors over a pty, with the g++-built firmware simulator as the device', () => {
  beforeAll(() => buildFirmwareTools());

  it('HELLO, then readings at a high rate, each acknowledged only once stored', async () => {
    const ptys = await startPtyPair(tempDir('pty'));
    const a = agentOn(ptys.gateway);
    // The device goes quiet once it is done; the status checked after that must not race the
    // silence watchdog (6 s by default: it reopens the port, and the status says not connected).
    patchConfig(a.dir, [[['sources', 'serial', 'silence_timeout_ms'], 120_000]]);
    const agent = a.start();
    try {
      await agent.waitForOutput(/serial port open/);
      const count = 20_000;
      const started = performance.now();
      const sim = startSimulator(['--path', ptys.device, '--sensors', '4', '--rate', '5000', '--count', String(count)]);
      expect(await sim.exited, `simulator:\n${sim.output().slice(-400)}\nagent:\n${agent.output().slice(-600)}`).toBe(0); // exits 0 only when every reading was acknowledged
      const seconds = (performance.now() - started) / 1000;
      console.log(`serial: ${count} readings acknowledged in ${seconds.toFixed(1)} s (${Math.round(count / seconds)} readings/s; simulator paced at 5000/s)`);
      expect(sim.output()).toMatch(new RegExp(`done sent=${count} buffered=0`));
      expect(agent.output()).toMatch(/device said hello/);
      expect(storedSeqs(a.dir)).toEqual({ rows: count, uniq: count });
      await waitFor('status snapshot', () => JSON.parse(cli(['status', '--data-dir', a.dir, '--json']).stdout).sources.serial?.accepted === count, 10_000, 200);
      const health = JSON.parse(cli(['status', '--data-dir', a.dir, '--json']).stdout).sources.serial;
      expect(health).toMatchObject({ type: 'serial', connected: true, counters: { crc_errors: 0 } });
      expect(health.endpoint).toMatch(/device 514d000000000001 \(simulator 1\.0\.0\)/);
    } finally {
      await agent.stop('SIGKILL');
      await ptys.stop();
    }
  });

  it('after the gateway is killed and restarted, the device resends what was not acknowledged: none lost, none doubled', async () => {
    const ptys = await startPtyPair(tempDir('pty'));
    const a = agentOn(ptys.gateway);
    let agent = a.start();
    const count = 6000;
    const random = seededRandom('serial kill points');
    const sim = startSimulator(['--path', ptys.device, '--sensors', '3', '--rate', '1000', '--count', String(count), '--linger-ms', '20000']);
    try {
      await agent.waitForOutput(/device said hello/);
      for (let kill = 0; kill < 3; kill++) {
        await new Promise((r) => setTimeout(r, random.int(700, 1200)));
        await agent.stop('SIGKILL');
        await new Promise((r) => setTimeout(r, 300));
        agent = a.start();
        await agent.waitForOutput(/serial port open/);
      }
      expect(await sim.exited, `${random.describe()}\nsimulator:\n${sim.output().slice(-400)}\nagent:\n${agent.output().slice(-600)}`).toBe(0);
      expect(sim.output()).toMatch(/resent=[1-9]/); // the firmware really had to resend
      await expectEachStoredOnce(a.dir, count);
    } finally {
      sim.kill();
      await agent.stop('SIGKILL');
      await ptys.stop();
    }
  });

  it('survives unplug and replug (the pty disappears and comes back) with no acknowledged reading lost', async () => {
    const dir = tempDir('pty');
    let ptys = await startPtyPair(dir);
    const a = agentOn(ptys.gateway);
    const agent = a.start();
    const count = 4000;
    const sim = startSimulator(['--path', ptys.device, '--sensors', '2', '--rate', '800', '--count', String(count), '--reopen', '--linger-ms', '20000']);
    try {
      await agent.waitForOutput(/device said hello/);
      await waitFor('readings flowing before the unplug', () => storedSeqs(a.dir).rows >= 400, 60_000, 50);
      await ptys.stop(); // unplug
      // Replugged only once the board saw its line go (a loaded machine may take seconds to tell it).
      await waitFor('the simulator sees the line closed', () => /closed /.test(sim.output()), 60_000, 50);
      ptys = await startPtyPair(dir); // replug
      expect(await sim.exited, `simulator:\n${sim.output().slice(-400)}\nagent:\n${agent.output().slice(-600)}`).toBe(0);
      expect(sim.output()).toMatch(/closed .*\n(.*\n)*open /);
      expect(agent.output()).toMatch(/serial port lost; reopening/); // by a close event, or by the silence watchdog
      await expectEachStoredOnce(a.dir, count);
    } finally {
      sim.kill();
      await agent.stop('SIGKILL');
      await ptys.stop();
    }
  });

  it('text mode: each name=value on a line is a reading of sensor name; bad lines are counted', async () => {
    const ptys = await startPtyPair(tempDir('pty'));
    const a = agentOn(ptys.gateway, 'text');
    const agent = a.start();
    try {
      await agent.waitForOutput(/serial port open/);
      writeFileSync(ptys.device, 'temp=21.5,hum=40\r\noops\ntemp=22\n');
      await waitFor('3 readings', () => storedSeqs(a.dir).rows === 3, 10_000, 100);
      await agent.stop();
      const status = JSON.parse(cli(['status', '--data-dir', a.dir, '--json']).stdout);
      expect(status.counters).toContainEqual({ name: 'rejected', label: 'serial: line: no "=" in pair', value: 1 });
    } finally {
      await agent.stop('SIGKILL');
      await ptys.stop();
    }
  });
});

import { statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';
import { smallDisk } from '../helpers/small-disk.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
const size = (p: string) => {
  try {
    return statSync(p).size;
  } catch {
    return 0;
  }
};

const disk = smallDisk(8);
const tiny = smallDisk(4);
afterAll(() => {
  disk?.release();
  tiny?.release();
});

const PER_MESSAGE = 20;
const MESSAGES = 6000;
const T0 = 1_764_000_000; // seconds; every reading has its own time, so a redelivery is recognised

/** Log lines of one agent run that look like an uncaught error or a stack trace. */
const stackLines = (out: string) => out.split('\n').filter((l) => /^\s+at |Uncaught|uncaughtException|\\n\s+at /.test(l));

describe('a full disk as a state lived through: two episodes on an 8 MiB tmpfs, a restart on a full disk in between (uplink down)', () => {
  it.skipIf(!disk)('stays alive, recovers both times, re-establishes its ballast, and every drop is exact and reaches the receiver', { timeout: 400_000 }, async () => {
    const dir = join(disk!.dir, 'agent');
    const broker = await startMosquitto();
    const receiverPort = await freePort();
    const agents: LongRunning[] = [];
    try {
      expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `http://127.0.0.1:${receiverPort}/v1/batches`]).code).toBe(0);
      patchConfig(dir, [
        [['batch', 'max_readings'], 500],
        [['batch', 'max_age_ms'], 200],
        [['batch', 'max_pending'], 4],
        [['uplink', 'retry_initial_ms'], 100],
        [['uplink', 'retry_max_ms'], 500],
        [['http', 'listen'], `127.0.0.1:${await freePort()}`],
        [['heartbeat', 'interval_s'], 0],
      ]);
      const reservePath = join(dir, 'edge-agent.db.reserve');
      let published = 0;
      const phase = async (n: number) => {
        const pub = await connectPublisher(broker.url);
        const from = published;
        await publishAll(
          pub,
          Array.from({ length: MESSAGES }, (_, m) => ({
            topic: 'sensors/pack',
            payload: JSON.stringify(Array.from({ length: PER_MESSAGE }, (_, k) => ({ n: `s${k % 4}`, t: T0 + from + m * PER_MESSAGE + k, v: k }))),
          })),
          100,
        );
        await pub.endAsync();
        published += MESSAGES * PER_MESSAGE;
        // Every acknowledged reading is either stored or counted as dropped.
        return waitFor(`episode ${n}: every reading stored or counted dropped`, () => {
          const s = status(dir);
          return s.readings.total + s.dropped.total >= published ? s : undefined;
        }, 120_000, 500);
      };

      const first = cliBackground(['run', '--data-dir', dir]);
      agents.push(first);
      await first.waitForReady();
      const reserveSize = size(reservePath);
      expect(reserveSize).toBeGreaterThan(0);
      const s1 = await phase(1);
      await first.waitForOutput(/disk full: released the disk reserve/, 30_000);
      await first.waitForOutput(/disk reserve re-established/, 60_000);
      expect(first.proc.exitCode).toBeNull();
      console.log(`episode 1: ${published} published, ${s1.readings.total} stored, ${s1.dropped.total} dropped; ballast ${size(reservePath)} of ${reserveSize} bytes back; disk free ${disk!.freeBytes()} bytes`);
      await first.stop('SIGKILL');

      // While the agent is down another program fills the card to the last block.
      const filler = disk!.fillUp();
      expect(disk!.freeBytes()).toBeLessThan(64 * 1024);
      const second = cliBackground(['run', '--data-dir', dir]);
      agents.push(second);
      await second.waitForReady(60_000);
      const s2 = await phase(2);
      await waitFor('the second episode', () => (second.output().match(/released the disk reserve/g)?.length ?? 0) >= 1 && second.output().match(/disk reserve re-established/), 60_000, 200);
      expect(second.proc.exitCode).toBeNull();
      console.log(`episode 2 (restart on a disk filled by a ${filler}-byte file): ${published} published in all, ${s2.readings.total} stored, ${s2.dropped.total} dropped; ballast ${size(reservePath)} bytes`);

      // The receiver comes back: everything kept arrives once, and every drop is reported.
      const receiver = cliBackground(['receive', '--listen', `127.0.0.1:${receiverPort}`, '--data-dir', tempDir('receiver')]);
      agents.push(receiver);
      await receiver.waitForOutput(/public key/);
      const done = await waitFor('the backlog and every drop delivered', () => {
        const s = status(dir);
        return s.batches.pending === 0 && s.readings.buffered === 0 && s.dropped.not_yet_reported === 0 ? s : undefined;
      }, 120_000, 500);
      const stats = await (await fetch(`http://127.0.0.1:${receiverPort}/v1/stats`)).json();
      expect(stats).toMatchObject({ rejected: 0, gaps: 0, dropped: done.dropped.total });
      expect(stats.readings + stats.dropped).toBe(published);
      for (const [sensor, n] of Object.entries(done.dropped.by_sensor)) expect(stats.dropped_by_sensor[`${done.device_id} ${sensor}`]).toBe(n);
      expect(second.proc.exitCode).toBeNull();
      // Repeated errors are counted, not printed one stack trace each.
      const logs = first.output() + second.output();
      expect(stackLines(logs)).toEqual([]);
      const fullLines = logs.match(/store is full \(SQLITE_FULL\)/g)?.length ?? 0;
      console.log(
        `full disk, two episodes: ${published} readings published, ${stats.readings} delivered, ${stats.dropped} dropped and reported (agent counted ${done.dropped.total}); ` +
          `"store is full" logged ${fullLines} times; agent log ${logs.length} bytes`,
      );
      const v = cli(['verify', '--data-dir', dir, '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } catch (err) {
      agents.forEach((a, i) => writeFileSync(join(tmpdir(), `full-disk-episodes-${i}.log`), a.output()));
      const tail = agents.map((a, i) => `--- process ${i} (whole log in ${join(tmpdir(), `full-disk-episodes-${i}.log`)}) ---\n${a.output().slice(-3000)}`).join('\n');
      throw new Error(`${(err as Error).message}\n${tail}`);
    } finally {
      for (const a of agents) await a.stop('SIGKILL');
      await broker.stop();
    }
  });

  it.skipIf(!tiny)('starts on a disk full to the last block (lock file, boot counter): a slice of the ballast makes the room', { timeout: 120_000 }, async () => {
    const dir = join(tiny!.dir, 'agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', 'mqtt://127.0.0.1:1', '--no-http']).code).toBe(0);
    patchConfig(dir, [[['heartbeat', 'interval_s'], 0]]);
    const first = cliBackground(['run', '--data-dir', dir]);
    await first.waitForOutput(/agent running/);
    expect(await first.stop('SIGTERM')).toBe(0);
    tiny!.fillUp();
    expect(tiny!.freeBytes()).toBe(0);
    const second = cliBackground(['run', '--data-dir', dir]);
    try {
      await second.waitForOutput(/"boot":2[^\n]*agent running/, 30_000);
      expect(second.output()).toMatch(/disk full at start-up: released the disk reserve to make room/);
      expect(second.proc.exitCode).toBeNull();
      console.log(`start on a full disk: boot 2 counted, ballast now ${size(join(dir, 'edge-agent.db.reserve'))} bytes`);
    } finally {
      expect(await second.stop('SIGTERM')).toBe(0);
    }
  });
});

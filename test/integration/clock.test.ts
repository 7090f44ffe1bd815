import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { fakeClockEnv, jumpingClock } from '../helpers/faketime.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir } from '../helpers/setup.js';

interface HeldReading {
  id: number;
  ts: number;
  time_quality: number;
  value: number;
  batch_seq: number;
}

/** What the receiver holds, in the gateway's acceptance order (reading id). */
function receiverReadings(receiverDir: string): { readings: HeldReading[]; batches: { seq: number; sync: number; boot: number }[] } {
  const db = new Database(join(receiverDir, 'receiver.db'), { readonly: true });
  try {
    return {
      readings: db.prepare('SELECT id, ts, time_quality, value, batch_seq FROM readings ORDER BY id').all() as HeldReading[],
      batches: db.prepare('SELECT seq, sync, boot FROM batches ORDER BY seq').all() as { seq: number; sync: number; boot: number }[],
    };
  } finally {
    db.close();
  }
}

// Bare numbers carry no time: the gateway stamps them, so its clock is what is under test.
const numbers = (from: number, n: number, topic = 'sensors/clock') => Array.from({ length: n }, (_, i) => ({ topic, payload: String(from + i) }));

describe('clock trouble: real agent processes under libfaketime', () => {
  it('boots in 1970 (no RTC, no NTP): gateway-timed readings are flagged unsynced, batches say so, the receiver accepts them', async () => {
    const broker = await startMosquitto();
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `${receiver.baseUrl}/v1/batches`]).code).toBe(0);
    // Even a config that claims a synchronised clock cannot make 1970 trustworthy.
    patchConfig(dir, [[['batch', 'max_age_ms'], 200], [['clock', 'synced'], 'always']]);
    const agent = cliBackground(['run', '--data-dir', dir], { env: fakeClockEnv('@1970-01-02 00:00:00') });
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      await publishAll(pub, numbers(0, 300));
      await pub.endAsync();
      await waitFor('300 readings at the receiver', async () => (await receiver.stats()).readings >= 300, 30_000, 100);
      expect(await receiver.stats()).toMatchObject({ readings: 300, rejected: 0, gaps: 0 });
      const held = receiverReadings(receiver.dataDir);
      expect(held.readings.every((r) => r.time_quality === 2)).toBe(true); // gateway-unsynced
      expect(held.readings.every((r) => r.ts < Date.UTC(1970, 0, 3))).toBe(true);
      expect(held.readings.map((r) => r.value)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      expect(held.batches.every((b) => b.sync === 0)).toBe(true);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
      await broker.stop();
    }
  });

  it('a clock stepped back 3 days and then forward 2 days while running: order by id, batches valid, chain unbroken', async () => {
    const broker = await startMosquitto();
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `${receiver.baseUrl}/v1/batches`]).code).toBe(0);
    patchConfig(dir, [[['batch', 'max_age_ms'], 200], [['clock', 'synced'], 'always']]);
    const clock = jumpingClock(dir);
    const agent = cliBackground(['run', '--data-dir', dir], { env: clock.env });
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const phase = async (from: number) => {
        await publishAll(pub, numbers(from, 200));
        await waitFor(`${from + 200} readings at the receiver`, async () => (await receiver.stats()).readings >= from + 200, 30_000, 100);
      };
      await phase(0);
      clock.jump('-3d');
      await new Promise((r) => setTimeout(r, 300));
      await phase(200);
      clock.jump('-1d'); // offsets are from the real clock: a step 2 days forward
      await new Promise((r) => setTimeout(r, 300));
      await phase(400);
      await pub.endAsync();

      expect(await receiver.stats()).toMatchObject({ readings: 600, rejected: 0, gaps: 0 });
      const { readings } = receiverReadings(receiver.dataDir);
      // Acceptance order is the reading id, whatever the wall clock said.
      expect(readings.map((r) => r.value)).toEqual(Array.from({ length: 600 }, (_, i) => i));
      const day = 86_400_000;
      const first = readings[0]!.ts;
      const at = (i: number) => readings[i]!.ts - first;
      expect(at(199)).toBeLessThan(day / 24);
      expect(at(200)).toBeLessThan(-3 * day + day / 24); // stepped back
      expect(at(399)).toBeLessThan(-3 * day + day / 24);
      expect(at(400)).toBeGreaterThan(-day - day / 24); // stepped forward 2 days
      expect(at(599)).toBeLessThan(-day + day / 24);
      // Batch ages run on the monotonic clock: no batch waited for the wall clock to catch up.
      const v = cli(['verify', '--data-dir', dir, '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
      await broker.stop();
    }
  });
});

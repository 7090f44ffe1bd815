import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { jumpingClock } from '../helpers/faketime.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir } from '../helpers/setup.js';

// Bare numbers carry no time: the gateway stamps them, so its clock is what is under test.
const numbers = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ topic: 'sensors/clock', payload: String(from + i) }));

describe('a clock stepped back a day while running (real agent under libfaketime, real receiver)', () => {
  it('flags the readings stamped after the step (q 2) until the clock settles, and reports the step as a clock.step event', { timeout: 120_000 }, async () => {
    const broker = await startMosquitto();
    const receiver = await startReceiverProcess(tempDir('receiver'));
    const dir = tempDir('agent');
    const init = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `${receiver.baseUrl}/v1/batches`]);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    const httpPort = await freePort();
    patchConfig(dir, [
      [['batch', 'max_age_ms'], 200],
      [['clock', 'synced'], 'always'],
      [['clock', 'step_settle_s'], 3],
      [['heartbeat', 'interval_s'], 0],
      [['http', 'listen'], `127.0.0.1:${httpPort}`],
    ]);
    const clock = jumpingClock(dir);
    const agent = cliBackground(['run', '--data-dir', dir], { env: clock.env });
    const healthClock = async () => (await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json()).checks.clock as { ok: boolean; reason: string };
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const phase = async (from: number) => {
        await publishAll(pub, numbers(from, 100));
        await waitFor(`${from + 100} readings at the receiver`, async () => (await receiver.stats()).readings >= from + 100, 30_000, 100);
      };
      await phase(0);
      clock.jump('-1d');
      await agent.waitForOutput(/gateway clock stepped/, 10_000);
      const stepped = await healthClock();
      expect(stepped).toMatchObject({ ok: false, reason: expect.stringMatching(/^gateway clock stepped by -8640\d s/) });
      await phase(100);
      // Trusted again once it has gone clock.step_settle_s without another step: a fact /healthz reports.
      const settled = await waitFor('the clock trusted again', async () => ((await healthClock()).ok ? true : undefined), 30_000, 200);
      expect(settled).toBe(true);
      await phase(200);
      await pub.endAsync();

      const rdb = new Database(join(receiver.dataDir, 'receiver.db'), { readonly: true });
      const rows = rdb.prepare('SELECT value, time_quality AS q, ts FROM readings ORDER BY id').all() as { value: number; q: number; ts: number }[];
      rdb.close();
      expect(rows.map((r) => r.value)).toEqual(Array.from({ length: 300 }, (_, i) => i));
      const q = (from: number, to: number) => [...new Set(rows.slice(from, to).map((r) => r.q))];
      expect(q(0, 100)).toEqual([1]); // gateway-synced before the step
      expect(q(100, 200)).toEqual([2]); // stamped by a clock that just stepped: not known to be right
      expect(q(200, 300)).toEqual([1]); // trusted again after settling
      const day = 86_400_000;
      expect(rows[100]!.ts - rows[99]!.ts).toBeLessThan(-day + 60_000);

      const events = (await (await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`)).json()) as { kind: string; detail: Record<string, number> }[];
      const steps = events.filter((e) => e.kind === 'clock.step');
      expect(steps).toHaveLength(1);
      expect(Math.abs(steps[0]!.detail.step_ms! + day)).toBeLessThan(5_000);
      const status = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
      expect(status.counters).toContainEqual({ name: 'clock_steps', label: '', value: 1 });
      console.log(`clock stepped by ${steps[0]!.detail.step_ms} ms: 100 readings flagged q 2 after it, trusted again after clock.step_settle_s 3; one clock.step event at the receiver`);
      const v = cli(['verify', '--data-dir', dir, '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nagent log:\n${agent.output().slice(-4000)}`);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
      await broker.stop();
    }
  });
});

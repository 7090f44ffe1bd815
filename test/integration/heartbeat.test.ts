import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';

interface Availability {
  heartbeats: number;
  availability: number | null;
  interval_s: number;
  boots: number[];
  downtime: { from: number; to: number; planned: boolean }[];
}

describe('signed heartbeats from a quiet agent', () => {
  let receiver: RunningReceiver;
  const A = tempDir('hb-agent');

  beforeAll(async () => {
    receiver = await startReceiverProcess(tempDir('hb-receiver'));
  });
  afterAll(async () => {
    await receiver?.proc.stop();
  });

  it('reach the receiver in verified batches without any reading, and give availability across a restart', async () => {
    const init = cli(['init', '--data-dir', A, '--no-http', '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey]);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(A, [
      [['heartbeat', 'interval_s'], 5],
      [['batch', 'max_age_ms'], 200],
    ]);
    const events = async () => {
      const res = await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`);
      return res.status === 200 ? ((await res.json()) as { kind: string; detail: Record<string, unknown> }[]) : [];
    };
    const first = cliBackground(['run', '--data-dir', A]);
    const beats = await waitFor('two heartbeats at the receiver', async () => {
      const e = (await events()).filter((x) => x.kind === 'agent.heartbeat');
      return e.length >= 2 && e;
    }, 30_000);
    expect(beats[0]!.detail).toMatchObject({ why: 'start', interval_s: 5, boot: 1 });
    expect(beats[1]!.detail).toMatchObject({ why: 'interval', boot: 1 });
    expect(await first.stop()).toBe(0);

    const second = cliBackground(['run', '--data-dir', A]);
    await waitFor('the stop and the next boot at the receiver', async () => {
      const e = await events();
      return e.some((x) => x.kind === 'agent.stop') && e.some((x) => x.kind === 'agent.heartbeat' && x.detail.boot === 2) && e;
    }, 30_000);
    await second.stop();
    const stats = await receiver.stats();
    expect(stats.readings).toBe(0);
    expect(stats.rejected).toBe(0);
    const a = (await (await fetch(`${receiver.baseUrl}/v1/devices/${device}/availability?to=${Date.now()}`)).json()) as Availability;
    expect(a.interval_s).toBe(5);
    expect(a.boots).toEqual([1, 2]);
    expect(a.heartbeats).toBeGreaterThanOrEqual(3);
    expect(a.availability).toBeGreaterThan(0);
    expect(a.availability).toBeLessThanOrEqual(1);
    expect(cli(['verify', '--data-dir', A]).code).toBe(0);
  }, 90_000);
});

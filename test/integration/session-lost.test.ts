import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, startReceiverProcess, tempDir } from '../helpers/setup.js';

const numbers = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ topic: 'sensors/s1', payload: String(from + i) }));

async function scenario(persistent: boolean) {
  const broker = await startMosquitto([], { persistent });
  const receiver = await startReceiverProcess(tempDir('receiver'));
  const dir = tempDir('agent');
  const init = cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--uplink-url', `${receiver.baseUrl}/v1/batches`]);
  expect(init.code, init.stderr).toBe(0);
  const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
  const httpPort = await freePort();
  patchConfig(dir, [
    [['batch', 'max_age_ms'], 200],
    [['heartbeat', 'interval_s'], 0],
    [['http', 'listen'], `127.0.0.1:${httpPort}`],
  ]);
  const agent = cliBackground(['run', '--data-dir', dir]);
  return { broker, receiver, dir, device, httpPort, agent };
}

describe('a broker restart that loses the agent session (real mosquitto, real receiver)', () => {
  it('is a warning, a counter, a /healthz reason and a source.session_lost event upstream', { timeout: 120_000 }, async () => {
    const { broker, receiver, dir, device, httpPort, agent } = await scenario(false);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      await publishAll(pub, numbers(0, 50));
      await waitFor('50 readings at the receiver', async () => (await receiver.stats()).readings >= 50, 30_000, 100);
      await pub.endAsync();
      // mosquitto without persistence forgets every session when it restarts.
      await broker.restart(200);
      const warned = await agent.waitForOutput(/"level":40[^\n]*broker lost the persistent session[^\n]*/, 30_000);
      expect(warned[0]).toMatch(/"client_id":"[^"]+"/);
      const hz = await (await fetch(`http://127.0.0.1:${httpPort}/healthz`)).json();
      expect(hz.checks.sources).toMatchObject({ ok: false, reason: expect.stringMatching(/^mqtt \(mqtt\) lost data upstream \d+ s ago: broker mqtt:\/\/127\.0\.0\.1:\d+ had no session .*session_present false/) });
      const events = await waitFor('the event at the receiver', async () => {
        const e = (await (await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`)).json()) as { kind: string; key: string; detail: Record<string, unknown> }[];
        return e.some((x) => x.kind === 'source.session_lost') ? e : undefined;
      }, 30_000, 200);
      const lost = events.filter((x) => x.kind === 'source.session_lost');
      expect(lost).toHaveLength(1);
      expect(lost[0]).toMatchObject({ key: 'mqtt', detail: { broker: broker.url, expired: false } });
      const status = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
      expect(status.counters).toContainEqual({ name: 'session_lost', label: 'mqtt', value: 1 });
      console.log(`broker restart without persistence: warned, counted (session_lost 1), /healthz sources failing, one source.session_lost event at the receiver`);
    } catch (err) {
      throw new Error(`${(err as Error).message}\nagent log:\n${agent.output().slice(-4000)}`);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
      await broker.stop();
    }
  });

  it('a broker that keeps the session (persistence true) raises nothing', { timeout: 120_000 }, async () => {
    const { broker, receiver, dir, agent } = await scenario(true);
    try {
      await agent.waitForReady();
      await broker.restart(200);
      await waitFor('the reconnect', () => (agent.output().match(/"session_present":true[^\n]*connected to broker/g)?.length ?? 0) >= 1, 30_000, 100);
      expect(agent.output()).not.toMatch(/broker lost the persistent session/);
      const status = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
      expect(status.counters.filter((c: { name: string }) => c.name === 'session_lost')).toEqual([]);
    } finally {
      await agent.stop('SIGKILL');
      await receiver.proc.stop();
      await broker.stop();
    }
  });
});

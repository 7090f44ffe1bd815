/**
 * Issue 14 item 5 with issue 16's reload: a changed `adaptive.policy` takes effect on SIGHUP,
 * without a restart. Real mosquitto, agent process; the test is the device side of the MQTT
 * command convention (agent/adaptive/README.md), acknowledging each set_interval.
 */
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

describe('adaptive.policy reloaded on SIGHUP (real mosquitto, agent)', () => {
  let broker: Broker;
  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('asks the devices for the new healthy interval at once, leaves a sensor the new rules no longer name alone, and says so in status', async () => {
    const dir = tempDir('adaptive-reload');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#']).code).toBe(0);
    const policy = (tankMs: number, withValve: boolean) => [
      { sensors: ['tank/#'], healthy_interval_ms: tankMs, alert_interval_ms: 1000 },
      ...(withValve ? [{ sensors: ['valve/#'], healthy_interval_ms: 30_000, alert_interval_ms: 1000 }] : []),
    ];
    patchConfig(dir, [
      [['adaptive', 'policy'], policy(20_000, true)],
      [['adaptive', 'commands'], { topic_prefix: 'devices', ack_timeout_ms: 20_000, retain: false }],
    ]);
    const commands: { sensor: string; interval_ms: number }[] = [];
    const device = await mqtt.connectAsync(broker.url, { clientId: 'tank-fw' });
    device.on('message', (topic, payload) => {
      if (!topic.endsWith('/set_interval')) return;
      const cmd = JSON.parse(payload.toString()) as { interval_ms: number; request: string };
      commands.push({ sensor: topic.slice('devices/'.length, -'/set_interval'.length), interval_ms: cmd.interval_ms });
      device.publish(`${topic}/ack`, JSON.stringify({ request: cmd.request, status: 'applied', interval_ms: cmd.interval_ms }), { qos: 1 });
    });
    await device.subscribeAsync('devices/+/+/set_interval', { qos: 1 });
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      await device.publishAsync('sensors/tank/level', '41.5', { qos: 1 });
      await device.publishAsync('sensors/valve/pos', '3', { qos: 1 });
      const applied = (sensor: string, ms: number) => () => {
        const s = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { adaptive?: { intervals: Record<string, { applied: number | null; wanted: number | null }> } };
        return s.adaptive?.intervals[sensor]?.applied === ms && s.adaptive.intervals;
      };
      await waitFor('tank/level at 20 s', applied('tank/level', 20_000), 60_000, 250);
      await waitFor('valve/pos at 30 s', applied('valve/pos', 30_000), 60_000, 250);
      expect(commands).toEqual(expect.arrayContaining([{ sensor: 'tank/level', interval_ms: 20_000 }, { sensor: 'valve/pos', interval_ms: 30_000 }]));
      const before = commands.length;

      // The operator edits the policy: the tank reports every 5 s now, the valve is no longer steered.
      patchConfig(dir, [[['adaptive', 'policy'], policy(5000, false)]]);
      agent.proc.kill('SIGHUP');
      await agent.waitForOutput(/config reloaded/, 60_000);
      const intervals = await waitFor('tank/level at 5 s after the reload', applied('tank/level', 5000), 60_000, 250);
      expect(intervals['valve/pos']).toBeUndefined();
      // No new reading was needed: the reload itself asked. The valve was not asked again.
      expect(commands.slice(before)).toEqual([{ sensor: 'tank/level', interval_ms: 5000 }]);
      const status = JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout) as { config: { last_reload: { ok: boolean; applied: string[] }; restart_needed: string[] } };
      expect(status.config.last_reload).toMatchObject({ ok: true, applied: ['adaptive.policy'] });
      expect(status.config.restart_needed).toEqual([]);
    } finally {
      await device.endAsync();
      await agent.stop();
    }
  }, 240_000);
});

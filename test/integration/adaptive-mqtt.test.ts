import mqtt from 'mqtt';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground, type LongRunning } from '../helpers/cli.js';
import type { Broker } from '../helpers/mosquitto.js';
import { useBrokerAndReceiver } from '../helpers/peers.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir, type RunningReceiver } from '../helpers/setup.js';
import { seededNoise } from '../helpers/seeded.js';

interface Command {
  sensor: string;
  interval_ms: number;
  request: string;
  retained: boolean;
}

describe('adaptive reporting over the MQTT command topic (agent/adaptive/README.md), real mosquitto', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  const A = tempDir('agent');

  useBrokerAndReceiver('receiver', (p) => ({ broker, receiver } = p));

  it('healthy interval at first sight, the alert interval once the model raises an alert, each acknowledged by the device and signed to the receiver', async () => {
    const init = cli(['init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey, '--anomaly-sensors', 'pump1/#']);
    expect(init.code, init.stderr).toBe(0);
    const deviceId = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(A, [
      [['batch', 'max_age_ms'], 200],
      [['adaptive', 'policy'], [{ sensors: ['pump1/#'], healthy_interval_ms: 10_000, alert_interval_ms: 1000 }]],
      [['adaptive', 'commands'], { topic_prefix: 'devices', ack_timeout_ms: 20_000 }],
    ]);

    // The device side of the convention: it accepts 500 ms .. 60 s, answers on .../set_interval/ack.
    const commands: Command[] = [];
    const device = await mqtt.connectAsync(broker.url, { clientId: 'pump1-fw' });
    device.on('message', (topic, payload, packet) => {
      if (!topic.endsWith('/set_interval')) return;
      const cmd = JSON.parse(payload.toString()) as { interval_ms: number; request: string };
      const sensor = topic.slice('devices/'.length, -'/set_interval'.length);
      commands.push({ sensor, ...cmd, retained: packet.retain });
      const ok = cmd.interval_ms >= 500 && cmd.interval_ms <= 60_000;
      // First a malformed answer and an oversized one (both counted, neither taken), then the real one.
      device.publish(`${topic}/ack`, JSON.stringify({ request: cmd.request, status: 'maybe', interval_ms: 1 }), { qos: 1 });
      device.publish(`${topic}/ack`, 'x'.repeat(600), { qos: 1 });
      device.publish(`${topic}/ack`, JSON.stringify({ request: cmd.request, status: ok ? 'applied' : 'out_of_range', interval_ms: ok ? cmd.interval_ms : 10_000, min_ms: 500, max_ms: 60_000 }), { qos: 1 });
    });
    await device.subscribeAsync('devices/pump1/+/set_interval', { qos: 1 });

    const agent = cliBackground(['run', '--data-dir', A]);
    let restarted: LongRunning | undefined;
    try {
      await agent.waitForReady();
      const t0 = 1_763_000_000;
      const noise = seededNoise(7);
      const publishRange = async (from: number, to: number) => {
        for (let i = from; i < to; i++) {
          const vib = 1 + 0.05 * noise() + (i >= 500 ? 1 : 0);
          await device.publishAsync('sensors/pump1', JSON.stringify([{ bn: 'pump1/', bt: t0 + i, n: 'vibration', v: vib }, { n: 'temp', v: 40 + 0.2 * noise() }]), { qos: 1 });
        }
      };
      // Healthy: the first readings make the controller set both sensors to the healthy interval.
      await publishRange(0, 10);
      await waitFor('healthy set_interval for both sensors', () => ['pump1/vibration', 'pump1/temp'].every((s) => commands.some((c) => c.sensor === s && c.interval_ms === 10_000)), 30_000);
      // Then the bearing knocks: stream-ad raises an alert on pump1/vibration (as in anomaly-alert.test.ts).
      await publishRange(10, 540);
      await waitFor('the alert interval for pump1/vibration', () => commands.some((c) => c.sensor === 'pump1/vibration' && c.interval_ms === 1000), 60_000, 100);
      expect(commands.filter((c) => c.sensor === 'pump1/temp').map((c) => c.interval_ms)).toEqual([10_000]); // the healthy sensor is left alone

      // Every outcome is a signed report.interval event, verified and stored at the receiver.
      const events = await waitFor('report.interval events at the receiver', async () => {
        const res = await fetch(`${receiver.baseUrl}/v1/devices/${deviceId}/events`);
        const body = (await res.json()) as { kind: string; key: string; detail: Record<string, unknown> }[];
        const mine = body.filter((e) => e.kind === 'report.interval');
        return mine.some((e) => e.detail.reason === 'alert' && e.detail.status === 'applied') ? mine : undefined;
      }, 30_000, 200);
      expect(events.find((e) => e.key === 'pump1/vibration' && e.detail.reason === 'alert')!.detail).toMatchObject({ interval_ms: 1000, status: 'applied', via: 'mqtt', alert_series: 'pump1/vibration', alert_model: 'stream-ad', device_interval_ms: 1000, min_ms: 500, max_ms: 60_000 });
      expect(events.find((e) => e.key === 'pump1/temp')!.detail).toMatchObject({ interval_ms: 10_000, status: 'applied', reason: 'healthy' });

      // The bad answers were counted, not taken; the command is retained for a device that connects later.
      const status = await waitFor('bad answers counted in the status snapshot', () => {
        const s = JSON.parse(cli(['status', '--data-dir', A, '--json']).stdout);
        return (s.adaptive?.mqtt?.bad_acks ?? 0) >= 6 && s.adaptive.intervals['pump1/vibration']?.applied === 1000 ? s : undefined;
      }, 15_000, 200);
      expect(status.adaptive.intervals['pump1/vibration']).toMatchObject({ applied: 1000, wanted: 1000, reason: 'alert' });
      expect(status.adaptive.mqtt).toMatchObject({ sent: 3, answered: 3, timeouts: 0 });
      const late = await mqtt.connectAsync(broker.url, { clientId: 'late-device' });
      const retained = new Promise<Record<string, unknown>>((resolve) => late.on('message', (_t, p) => resolve(JSON.parse(p.toString()))));
      await late.subscribeAsync('devices/pump1/vibration/set_interval', { qos: 1 });
      expect(await retained).toMatchObject({ interval_ms: 1000 });
      await late.endAsync();

      // Restarted while the alert is still raised: the first reading gets the alert interval again, not the healthy one.
      await agent.stop('SIGTERM');
      const before = commands.length;
      restarted = cliBackground(['run', '--data-dir', A]);
      await restarted.waitForReady();
      await publishRange(540, 541);
      await waitFor('a set_interval after the restart', () => commands.slice(before).some((c) => c.sensor === 'pump1/vibration' && !c.retained), 30_000);
      expect(commands.slice(before).filter((c) => c.sensor === 'pump1/vibration' && !c.retained).map((c) => c.interval_ms)).toEqual([1000]);
    } finally {
      await device.endAsync();
      await agent.stop('SIGKILL');
      await restarted?.stop('SIGKILL');
    }
  }, 180_000);
});

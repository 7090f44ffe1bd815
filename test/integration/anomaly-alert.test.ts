import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, startReceiverProcess, tempDir, type RunningReceiver } from '../helpers/setup.js';
import { seededNoise } from '../helpers/seeded.js';

interface AlertChange {
  key: string;
  model: string;
  model_sha256: string;
  state: string;
  batch_seq: number;
  reading_id: number | null;
}

describe('on-device anomaly detection, live over MQTT', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  const A = tempDir('agent');
  const R = tempDir('receiver');
  const models = join(import.meta.dirname, '../../models');

  beforeAll(async () => {
    broker = await startMosquitto();
    receiver = await startReceiverProcess(R);
  });
  afterAll(async () => {
    await receiver?.proc.stop();
    await broker?.stop();
  });

  it('a stream that turns abnormal raises an alert in the signed batch at the receiver and on the local alert topic', async () => {
    const init = cli([
      'init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#',
      '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey,
      '--anomaly-sensors', 'pump1/#', '--alert-topic', 'site7/alerts', '--ha-discovery',
    ]);
    expect(init.code, init.stderr).toBe(0);
    const deviceId = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(A, [[['batch', 'max_age_ms'], 200]]);

    const alerts: { topic: string; payload: Record<string, unknown>; retain: boolean }[] = [];
    const watcher = await mqtt.connectAsync(broker.url, { clientId: 'ha-watcher' });
    watcher.on('message', (topic, payload, packet) => alerts.push({ topic, payload: JSON.parse(payload.toString()), retain: packet.retain }));
    await watcher.subscribeAsync('site7/alerts/#', { qos: 1 });
    const ha = new Map<string, Record<string, unknown>>();
    const haWatcher = await mqtt.connectAsync(broker.url, { clientId: 'ha-discovery-watcher' });
    haWatcher.on('message', (topic, payload) => ha.set(topic, JSON.parse(payload.toString()) as Record<string, unknown>));
    await haWatcher.subscribeAsync(['homeassistant/#', 'edge-agent/+/anomaly/#'], { qos: 1 });

    const agent = cliBackground(['run', '--data-dir', A]);
    try {
      await agent.waitForOutput(/inference running/);
      await agent.waitForReady();
      const sensor = await mqtt.connectAsync(broker.url, { clientId: 'pump1-fw' });
      const t0 = 1_763_000_000;
      // The shipped streaming detector (stream-ad) learns each sensor for its whole life (150-reading warm-up).
      // 500 s of a noisy but healthy pump, then a bearing that starts to knock: vibration jumps by
      // 20 of its standard deviations; the temperature stays healthy throughout.
      const noise = seededNoise(7);
      for (let i = 0; i < 540; i++) {
        const vib = 1 + 0.05 * noise() + (i >= 500 ? 1 : 0);
        const temp = 40 + 0.2 * noise();
        await sensor.publishAsync('sensors/pump1', JSON.stringify([{ bn: 'pump1/', bt: t0 + i, n: 'vibration', v: vib }, { n: 'temp', v: temp }]), { qos: 1 });
      }
      await sensor.endAsync();

      await waitFor('an alert on site7/alerts/#', () => alerts.some((a) => a.payload.state === 'raised'), 20_000);
      const raised = alerts.find((a) => a.payload.state === 'raised')!;
      expect(raised.topic).toBe('site7/alerts/stream-ad/pump1/vibration');
      const sha = createHash('sha256').update(readFileSync(join(models, 'stream-ad.onnx'))).digest('hex');
      expect(raised.retain).toBe(false); // delivered live; a late subscriber gets it retained
      expect(raised.payload).toMatchObject({ device: deviceId, series: 'pump1/vibration', model: 'stream-ad', model_sha256: sha, alert: true, threshold: 0.5 });
      expect(raised.payload.score as number).toBeGreaterThan(0.5);
      // The message names the series, the model, the score and the last reading with its unit.
      expect(raised.payload.message).toMatch(/^pump1\/vibration: anomaly raised by stream-ad \(score [01]\.\d\d at or above 0\.5\); last reading [\d.]+$/);
      expect(raised.payload.reading_value).toEqual(expect.any(Number));
      // Home Assistant sees a binary_sensor for the series, its state ON with the score and reason as attributes.
      const node = `edge_agent_${deviceId.slice(-12)}`;
      const haConfig = await waitFor('the anomaly binary_sensor', () => ha.get(`homeassistant/binary_sensor/${node}/stream-ad_pump1_vibration/config`), 20_000);
      expect(haConfig).toMatchObject({ device_class: 'problem', state_topic: `edge-agent/${node}/anomaly/stream-ad/pump1/vibration`, value_template: '{{ value_json.state }}' });
      const haState = await waitFor('the anomaly state', () => ha.get(`edge-agent/${node}/anomaly/stream-ad/pump1/vibration`), 20_000);
      expect(haState).toMatchObject({ state: 'ON', model: 'stream-ad', reason: raised.payload.message });
      await haWatcher.endAsync();
      expect(new Date(raised.payload.time as string).getTime()).toBeGreaterThanOrEqual((t0 + 500) * 1000);

      let changes: AlertChange[] = [];
      await waitFor('the alert at the receiver', async () => {
        const res = await fetch(`${receiver.baseUrl}/v1/devices/${deviceId}/alerts`);
        changes = res.ok ? ((await res.json()) as AlertChange[]) : [];
        return changes.some((c) => c.state === 'raised');
      }, 20_000);
      const atReceiver = changes.find((c) => c.state === 'raised')!;
      expect(atReceiver).toMatchObject({ key: 'pump1/vibration', model: 'stream-ad', model_sha256: sha });
      expect(changes.every((c) => c.key === 'pump1/vibration')).toBe(true); // the quiet temperature never alerted
      expect(atReceiver.reading_id).toEqual(expect.any(Number));
      const stats = (await receiver.stats()) as unknown as { verdicts: number; alerts_raised: number };
      expect(stats.alerts_raised).toBeGreaterThanOrEqual(1);
      // inference.verdicts informative (issue 13): the ~270 scored windows are not all kept, only
      // the alert's (raised, and every one while it stands) and a keyframe per series per 60 s.
      expect(stats.verdicts).toBeGreaterThanOrEqual(2 + 1);
      expect(stats.verdicts).toBeLessThan(2 * (540 - 400) - 10);

      // The batch that carried it verifies offline, with its verdicts under the device's signature.
      const file = join(A, 'alert-batch.cbor');
      expect(cli(['export', '--data-dir', A, '--seq', String(atReceiver.batch_seq), '--out', file]).code).toBe(0);
      const v = cli(['verify', file, '--json']);
      expect(v.code, v.stdout + v.stderr).toBe(0);

      const status = cli(['status', '--data-dir', A]);
      expect(status.stdout).toMatch(/ALERT pump1\/vibration \(stream-ad\)/);
    } finally {
      await agent.stop();
      await watcher.endAsync();
    }
    // After a clean stop the store verifies, verdicts included.
    const verify = cli(['verify', '--data-dir', A]);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });
});

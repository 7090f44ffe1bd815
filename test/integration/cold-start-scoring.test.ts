import mqtt from 'mqtt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { InferenceStats } from '../../agent/pipeline/inference-stage.js';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto, type Broker } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

/**
 * The models load while the sources start (agent/run/score-slot.ts start()): readings the broker
 * hands over before the model is ready are held and scored once it is, none skipped.
 */
describe('cold start with inference', () => {
  let broker: Broker;
  const A = tempDir('agent');
  const N = 300;

  beforeAll(async () => {
    broker = await startMosquitto();
  });
  afterAll(async () => {
    await broker?.stop();
  });

  it('scores every reading queued for its session while it was down, the first ones included', async () => {
    const init = cli(['init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#', '--anomaly-sensors', 'pump1/#']);
    expect(init.code, init.stderr).toBe(0);
    patchConfig(A, [[['batch', 'max_age_ms'], 200]]);
    // A first run creates the agent's persistent session at the broker.
    let agent = cliBackground(['run', '--data-dir', A]);
    await agent.waitForReady();
    expect(await agent.stop()).toBe(0);

    const sensor = await mqtt.connectAsync(broker.url, { clientId: 'pump1-fw' });
    for (let i = 0; i < N; i++) await sensor.publishAsync('sensors/pump1', JSON.stringify([{ bn: 'pump1/', bt: 1_763_000_000 + i, n: 'vibration', v: 1 + (i % 7) / 100 }]), { qos: 1 });
    await sensor.endAsync();

    agent = cliBackground(['run', '--data-dir', A]);
    try {
      await agent.waitForReady();
      const seen = await waitFor(`all ${N} readings scored (status --json)`, () => {
        const s = cli(['status', '--data-dir', A, '--json']);
        const inference = (JSON.parse(s.stdout) as { inference: InferenceStats | null }).inference;
        return inference && inference.scored >= N ? inference : undefined;
      }, 30_000, 500);
      expect(seen.scored).toBe(N);
      expect(seen.skippedQueueFull).toBe(0);
      expect(seen.unscored).toBe(0);
    } finally {
      expect(await agent.stop()).toBe(0);
    }
    const counters = cli(['status', '--data-dir', A, '--json']);
    expect(counters.stdout).not.toMatch(/inference_skipped/);
  });
});

/**
 * Operator control of the streaming detector through the public interfaces: a binding whose
 * filter matches no sensor is warned about (log, `status`, /healthz) naming the sensors that did
 * arrive, and `edge-agent models relearn` makes a running agent's series start a fresh baseline,
 * recorded upstream as event model.relearn (a real mosquitto, a real receiver).
 */
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import type { Broker } from '../helpers/mosquitto.js';
import { useBrokerAndReceiver } from '../helpers/peers.js';
import { freePort, waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir, type RunningReceiver } from '../helpers/setup.js';

describe('models relearn and unmatched bindings, live over MQTT', () => {
  let broker: Broker;
  let receiver: RunningReceiver;
  const A = tempDir('relearn');

  useBrokerAndReceiver('relearn-receiver', (p) => ({ broker, receiver } = p));

  it('warns about a binding that matches nothing, and relearns a sensor of the running agent with an event upstream', async () => {
    const port = await freePort();
    const init = cli([
      'init', '--data-dir', A, '--mqtt-url', broker.url, '--mqtt-topic', 'sensors/#',
      '--uplink-url', `${receiver.baseUrl}/v1/batches`, '--receiver-key', receiver.publicKey,
      '--anomaly-sensors', 'pump1/#', '--http-listen', `127.0.0.1:${port}`,
    ]);
    expect(init.code, init.stderr).toBe(0);
    const device = /device id (did:key:\w+)/.exec(init.stdout)![1]!;
    patchConfig(A, [
      [['batch', 'max_age_ms'], 200],
      [['inference', 'unmatched_warn_after'], 100],
      [['inference', 'bindings', 'typo'], { model: 'stream-ad', sensors: ['pmup1/#'] }],
    ]);
    const early = cli(['models', 'relearn', '--all', '--data-dir', A]);
    expect(early.code).toBe(2); // no store yet: the agent has never run
    expect(early.stderr).toMatch(/no store at .* yet/);

    const agent = cliBackground(['run', '--data-dir', A]);
    try {
      await agent.waitForOutput(/inference running/);
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      await publishAll(pub, Array.from({ length: 200 }, (_, i) => ({ topic: 'sensors/pump1/temp', payload: String(20 + (i % 7) * 0.1) })));
      await pub.endAsync();

      await agent.waitForOutput(/inference binding typo has matched no sensor after \d+ readings \(filters: pmup1\/#\); sensors that arrived: pump1\/temp/);
      const health = (await (await fetch(`http://127.0.0.1:${port}/healthz`)).json()) as { checks: Record<string, { ok: boolean; reason: string }> };
      expect(health.checks['inference']!.reason).toMatch(/^warning: inference binding typo has matched no sensor .* sensors that arrived: pump1\/temp/);
      await waitFor('status naming the unmatched binding', () => /typo {2}MATCHES NO SENSOR after \d+ readings \(filters: pmup1\/#\); sensors that arrived: pump1\/temp/.test(cli(['status', '--data-dir', A]).stdout), 20_000);

      const r = cli(['models', 'relearn', 'pump1/temp', '--data-dir', A]);
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toMatch(/relearn request #\d+ for sensor pump1\/temp: the running agent applies it/);
      await agent.waitForOutput(/relearn: sensor pump1\/temp: 1 series start a fresh baseline/);
      const events = await waitFor('event model.relearn at the receiver', async () => {
        const res = await fetch(`${receiver.baseUrl}/v1/devices/${device}/events`);
        const list = res.status === 200 ? ((await res.json()) as { kind: string; key: string; detail: Record<string, unknown> }[]) : [];
        const hit = list.filter((e) => e.kind === 'model.relearn');
        return hit.length > 0 && hit;
      }, 30_000);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ key: 'pump1/temp', detail: { binding: 'anomaly', model: 'stream-ad', selector: 'sensor' } });

      // The relearned series builds a new baseline from its next readings (saved at stop).
      const pub2 = await connectPublisher(broker.url);
      await publishAll(pub2, Array.from({ length: 20 }, () => ({ topic: 'sensors/pump1/temp', payload: '21' })));
      await pub2.endAsync();
      await waitFor('the new readings scored', () => /inference +\d+ readings scored/.test(cli(['status', '--data-dir', A]).stdout) && Number(/inference +(\d+) readings scored/.exec(cli(['status', '--data-dir', A]).stdout)![1]) >= 220, 20_000);
      const none = cli(['models', 'relearn', '--asset', 'boiler9', '--data-dir', A]);
      expect(none.code).toBe(0);
      await agent.waitForOutput(/relearn: asset boiler9 matches no series/);
    } finally {
      await agent.stop();
    }
    // Requested while the agent is stopped: applied when it starts again (the saved state is restored, then forgotten).
    const offline = cli(['models', 'relearn', '--all', '--data-dir', A]);
    expect(offline.code, offline.stderr).toBe(0);
    expect(offline.stdout).toMatch(/applied when the agent next starts/);
    const again = cliBackground(['run', '--data-dir', A]);
    try {
      await again.waitForOutput(/relearn: all series: 1 series start a fresh baseline/);
    } finally {
      await again.stop();
    }
    const usage = cli(['models', 'relearn', 'pump1/temp', '--all', '--data-dir', A]);
    expect(usage.code).toBe(2);
    expect(usage.stderr).toMatch(/exactly one of SENSOR, --asset ID or --all/);
  }, 240_000);
});

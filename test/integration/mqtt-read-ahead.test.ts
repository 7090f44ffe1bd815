import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);

/**
 * The read-ahead gate (sources/mqtt/mqtt-source.ts) stops reading until a message's commit settles;
 * with nothing more read, that commit must not wait for store.commit_interval_ms to gather more.
 * Here the gate closes every couple of messages (max_inflight 4: read ahead 2) and the interval is
 * the schema's maximum, 5 s: a commit that waited for it would take ~5 s per gated message.
 */
describe('MQTT read-ahead gate and the commit interval', () => {
  it('commits at once the message after which reading stops, whatever store.commit_interval_ms', { timeout: 120_000 }, async () => {
    const broker = await startMosquitto();
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url]).code).toBe(0);
    patchConfig(dir, [
      [['sources', 'mqtt', 'max_inflight'], 4],
      [['store', 'commit_interval_ms'], 5000],
    ]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      const n = 100;
      const started = Date.now();
      await publishAll(pub, Array.from({ length: n }, (_, i) => ({ topic: 'sensors/gate', payload: JSON.stringify({ v: i, t: 1_764_300_000 + i }) })));
      await waitFor(`${n} readings stored`, () => status(dir).readings.total === n, 60_000, 100);
      const seconds = (Date.now() - started) / 1000;
      await pub.endAsync();
      // ~50 gated messages x 5 s if the gate waited for the interval; a few commit intervals at most if not.
      expect(seconds, `${n} readings took ${seconds.toFixed(1)} s`).toBeLessThan(20);
    } finally {
      await agent.stop();
      await broker.stop();
    }
  });
});

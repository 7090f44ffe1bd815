import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
const counter = (s: { counters: { name: string; label: string; value: number }[] }, name: string, label: string) =>
  s.counters.find((c) => c.name === name && c.label === label)?.value ?? 0;
const seqMessages = (from: number, n: number) => Array.from({ length: n }, (_, i) => ({ topic: 'sensors/pump', payload: JSON.stringify({ v: from + i, seq: from + i }) }));

describe('slow consumer: mosquitto drops QoS 1 messages past max_queued_messages; the agent sees the gap (real processes)', () => {
  it('counts every message the broker dropped for a stalled agent as a per-sensor sequence gap', async () => {
    // mosquitto's default queue limit, stated explicitly (the later line wins over the helper's).
    const broker = await startMosquitto(['max_queued_messages 1000']);
    const dir = tempDir('agent');
    expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url]).code).toBe(0);
    patchConfig(dir, [[['sources', 'mqtt', 'max_inflight'], 100]]);
    const agent = cliBackground(['run', '--data-dir', dir]);
    try {
      await agent.waitForReady();
      const pub = await connectPublisher(broker.url);
      await publishAll(pub, seqMessages(0, 100));
      await waitFor('the first 100 readings', () => status(dir).readings.total === 100, 20_000, 100);

      // The agent stalls (SIGSTOP: a store on a dying SD card, a swap storm): it is still connected,
      // but reads nothing. The broker fills the 100 in-flight slots, queues 1000, and drops the rest.
      agent.proc.kill('SIGSTOP');
      const stalled = 3000;
      await publishAll(pub, seqMessages(100, stalled)); // the broker acknowledges the publisher either way
      agent.proc.kill('SIGCONT');
      let drained = -1;
      await waitFor('the agent to drain the broker queue', () => {
        const n = status(dir).readings.total as number;
        const done = n === drained && n > 100;
        drained = n;
        return done;
      }, 30_000, 500);
      // A gap shows only when the next reading arrives: the sensor carries on.
      await publishAll(pub, seqMessages(100 + stalled, 10));
      await pub.endAsync();

      const total = 100 + stalled + 10;
      let last = -1;
      const settled = await waitFor('the agent to settle', () => {
        const s = status(dir);
        const accepted = s.readings.total as number;
        const done = accepted === last && accepted >= drained + 10;
        last = accepted;
        return done ? s : undefined;
      }, 30_000, 1000);
      const accepted = settled.readings.total as number;
      const gaps = counter(settled, 'seq_gaps', 'pump');
      // Measured: what the broker delivered after the stall is about in-flight + queue limit.
      expect(accepted).toBeLessThan(total);
      expect(accepted).toBeGreaterThanOrEqual(100 + 1000);
      // Every reading that never arrived is counted as a gap, exactly.
      expect(gaps).toBe(total - accepted);
      expect(counter(settled, 'seq_rewinds', 'pump')).toBe(0);
      console.log(`slow consumer: ${stalled} published during the stall, ${accepted - 110} delivered, ${gaps} dropped by the broker and counted as gaps`);
    } finally {
      agent.proc.kill('SIGCONT');
      await agent.stop('SIGKILL');
      await broker.stop();
    }
  });
});

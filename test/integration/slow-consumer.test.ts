import Database from 'better-sqlite3';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { cli, cliBackground } from '../helpers/cli.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/ports.js';
import { connectPublisher, publishAll } from '../helpers/publisher.js';
import { patchConfig, tempDir } from '../helpers/setup.js';

const status = (dir: string) => JSON.parse(cli(['status', '--data-dir', dir, '--json']).stdout);
const counter = (s: { counters: { name: string; label: string; value: number }[] }, name: string, label: string) =>
  s.counters.find((c) => c.name === name && c.label === label)?.value ?? 0;
type Message = { topic: string; payload: string };
const seqMessages = (from: number, n: number): Message[] => Array.from({ length: n }, (_, i) => ({ topic: 'sensors/pump', payload: JSON.stringify({ v: from + i, seq: from + i }) }));
const T0 = 1_764_200_000; // seconds
/** SenML without seq, one reading a second on the sensor's own clock: only its cadence can tell a loss. */
const senmlMessages = (from: number, n: number): Message[] =>
  Array.from({ length: n }, (_, i) => ({ topic: 'sensors/senml', payload: JSON.stringify([{ bn: 'boiler/', n: 'temp', u: 'Cel', t: T0 + from + i, v: 20 + ((from + i) % 7) }]) }));
const markerStored = (dir: string) => {
  const db = new Database(join(dir, 'edge-agent.db'), { readonly: true });
  try {
    return db.prepare("SELECT 1 FROM readings WHERE sensor = 'marker'").get() !== undefined;
  } finally {
    db.close();
  }
};

/**
 * The agent stalls (SIGSTOP: a store on a dying SD card, a swap storm) while still connected; the
 * broker fills the 100 in-flight slots, queues 1000 (mosquitto's default max_queued_messages) and
 * drops the rest. Facts, not pauses, say when each step is over: the in-flight window and the queue
 * stored means the queue has room for the tail; a marker published after the tail, once stored,
 * says every earlier message was handled (the broker keeps one publisher's order).
 */
async function stallAndDrain(messages: (from: number, n: number) => Message[], stalled: number) {
  const broker = await startMosquitto(['max_queued_messages 1000']); // the default, stated (the later line wins over the helper's)
  const dir = tempDir('agent');
  expect(cli(['init', '--data-dir', dir, '--mqtt-url', broker.url]).code).toBe(0);
  patchConfig(dir, [[['sources', 'mqtt', 'max_inflight'], 100]]);
  const agent = cliBackground(['run', '--data-dir', dir]);
  try {
    await agent.waitForReady();
    const pub = await connectPublisher(broker.url);
    await publishAll(pub, messages(0, 100));
    await waitFor('the first 100 readings', () => status(dir).readings.total === 100, 20_000, 100);
    agent.proc.kill('SIGSTOP');
    await publishAll(pub, messages(100, stalled)); // the broker acknowledges the publisher either way
    agent.proc.kill('SIGCONT');
    await waitFor('the in-flight window and the broker queue stored', () => status(dir).readings.total >= 100 + 1000, 60_000, 200);
    // A gap shows only when the next reading arrives: the sensor carries on.
    await publishAll(pub, messages(100 + stalled, 10));
    await pub.publishAsync('sensors/marker', '1', { qos: 1 });
    await pub.endAsync();
    await waitFor('the marker stored', () => markerStored(dir), 60_000, 200);
    const s = status(dir);
    return { s, total: 100 + stalled + 10, accepted: (s.readings.total as number) - 1 };
  } catch (err) {
    throw new Error(`${(err as Error).message}\nagent log:\n${agent.output().slice(-3000)}`);
  } finally {
    agent.proc.kill('SIGCONT');
    await agent.stop('SIGKILL');
    await broker.stop();
  }
}

describe('slow consumer: mosquitto drops QoS 1 messages past max_queued_messages; the agent sees the gap (real processes)', () => {
  it('counts every message the broker dropped for a stalled agent as a per-sensor sequence gap', { timeout: 180_000 }, async () => {
    const stalled = 3000;
    const { s, total, accepted } = await stallAndDrain(seqMessages, stalled);
    const gaps = counter(s, 'seq_gaps', 'pump');
    // Measured: what the broker delivered after the stall is about in-flight + queue limit.
    expect(accepted).toBeLessThan(total);
    expect(accepted).toBeGreaterThanOrEqual(100 + 1000);
    // Every reading that never arrived is counted as a gap, exactly.
    expect(gaps).toBe(total - accepted);
    expect(counter(s, 'seq_rewinds', 'pump')).toBe(0);
    console.log(`slow consumer: ${stalled} published during the stall, ${accepted - 110} delivered, ${gaps} dropped by the broker and counted as gaps`);
  });

  it('a SenML sensor without seq: the messages the broker dropped are counted from its cadence (rate_gaps)', { timeout: 180_000 }, async () => {
    const stalled = 3000;
    const { s, total, accepted } = await stallAndDrain(senmlMessages, stalled);
    const gaps = counter(s, 'rate_gaps', 'boiler/temp');
    expect(accepted).toBeLessThan(total);
    expect(accepted).toBeGreaterThanOrEqual(100 + 1000);
    // One reading a second, exactly: the cadence tells exactly how many never arrived.
    expect(gaps).toBe(total - accepted);
    expect(counter(s, 'seq_gaps', 'boiler/temp')).toBe(0);
    console.log(`slow consumer, SenML without seq: ${stalled} published during the stall, ${accepted - 110} delivered, ${gaps} dropped by the broker and counted as rate_gaps`);
  });
});

/**
 * Flash wear at a low rate, as a small deployment runs: 20 sensors publishing one QoS 1 reading
 * per second each, not in step (mqtt.js, topics sensors/low/s0..s19, one every 50 ms) for `seconds`, the agent with its default
 * batching and the bench's inference binding, delivering to a real receiver. The agent's
 * write_bytes (/proc/PID/io) over the measured span, scaled to a day: `write_mb_per_day_20x1hz`
 * (MB = 10^6 bytes; the target is 1 GB/day).
 */
import mqtt from 'mqtt';
import { writeBytes } from './lib/procfs.js';
import { initAgent, startAgent, startBroker, startReceiver, until, type Proc } from './lib/processes.js';
import { sleep } from './lib/stats.js';

export interface LowRateResult {
  seconds: number;
  readings: number;
  bytesWritten: number;
  mbPerDay: number;
  bytesPerReading: number;
  /** False when the receiver had not verified every published reading 30 s after the run: the agent fell behind, and the figure counts fewer commits than readings. */
  caughtUp: boolean;
}

export async function lowRateRun(opts: { sensors: number; seconds: number; agentCore: number; peerCore: number; edits: [string[], unknown][] }): Promise<LowRateResult> {
  const broker = await startBroker(opts.peerCore);
  const receiver = await startReceiver(opts.peerCore);
  const pub = mqtt.connect(broker.url, { protocolVersion: 4, clientId: `bench-low-${process.pid}` });
  await new Promise<void>((res) => pub.once('connect', () => res()));
  let agent: Proc | undefined;
  try {
    const dir = initAgent(broker.url, receiver.url, opts.edits);
    agent = await startAgent(opts.agentCore, dir);
    // Sensors are not in step: each publishes once a second, spread evenly over the second.
    let published = 0;
    const tick = () => {
      const s = published % opts.sensors;
      pub.publish(`sensors/low/s${s}`, `{"v":${Math.sin(published / opts.sensors / 10) + s},"t":${Date.now()}}`, { qos: 1 });
      published++;
    };
    // A warm-up of 5 s (first batches, inference warm-up, first checkpoint) is not counted.
    const timer = setInterval(tick, 1000 / opts.sensors);
    await sleep(5000);
    const before = writeBytes(agent.pid);
    const sentBefore = published;
    const t0 = performance.now();
    await sleep(opts.seconds * 1000);
    const after = writeBytes(agent.pid);
    const seconds = (performance.now() - t0) / 1000;
    clearInterval(timer);
    const readings = published - sentBefore;
    const caughtUp = await until('the receiver to verify the low-rate readings', async () => (await receiver.readings()) >= published, 30_000).then(
      () => true,
      () => false,
    );
    if (before === undefined || after === undefined) throw new Error('no /proc/PID/io: cannot measure bytes written');
    const bytesWritten = after - before;
    return { seconds, readings, bytesWritten, mbPerDay: (bytesWritten / seconds) * 86_400 / 1e6, bytesPerReading: bytesWritten / Math.max(1, readings), caughtUp };
  } finally {
    await agent?.stop();
    await pub.endAsync();
    await receiver.proc.stop();
    await broker.proc.stop();
  }
}

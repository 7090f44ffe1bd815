/**
 * End-to-end runs with real processes on loopback: mosquitto_pub -> mosquitto -> `edge-agent run`
 * (pinned to core 0) -> HTTP -> `edge-agent receive` (verifies every batch). Also the ceiling
 * (a bare mqtt.js subscriber on core 0 fed by the same broker and publisher), acknowledgement
 * latency at a fixed rate and cold start, both seen through an MQTT-parsing proxy.
 */
import { spawn } from 'node:child_process';
import mqtt from 'mqtt';
import { AckProxy } from './lib/ack-proxy.js';
import { pinned } from './lib/cores.js';
import { rssMb, sampleRss, writeBytes } from './lib/procfs.js';
import { initAgent, startAgent, startBroker, startProc, startReceiver, until, type Proc } from './lib/processes.js';
import { percentile, sleep } from './lib/stats.js';

const AGENT_CORE = 0;
const PEER_CORE = 1;
/** Batching as a deployment would configure it for a busy gateway; a short age keeps the measured tail small. */
const AGENT_EDITS: [string[], unknown][] = [
  [['batch', 'max_readings'], 1000],
  [['batch', 'max_age_ms'], 100],
];

export function benchLines(messages: number, offset = 0): string {
  let s = '';
  for (let i = 0; i < messages; i++) s += `{"v":${i},"t":${1_763_000_000_000 + offset + i}}\n`;
  return s;
}

/** mosquitto_pub (C) publishing every line of `lines` with QoS 1, up to 1000 in flight. */
function publishLines(port: number, lines: string): Promise<void> {
  const [cmd, args] = pinned(PEER_CORE, 'mosquitto_pub', ['-h', '127.0.0.1', '-p', String(port), '-q', '1', '-M', '1000', '-t', 'sensors/bench', '-l']);
  return new Promise((res, rej) => {
    const p = spawn(cmd, args, { stdio: ['pipe', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (d: Buffer) => (err += d.toString()));
    p.on('exit', (code) => (code === 0 ? res() : rej(new Error(`mosquitto_pub exited ${code}: ${err}`))));
    p.stdin!.end(lines);
  });
}

export interface ThroughputResult {
  perS: number;
  rssPeakMb: number;
  bytesWrittenPerReading: number | undefined;
  receiverRejected: number;
}

/** Sustained throughput: from the first publish until the receiver has verified every reading. */
export async function throughputRun(messages: number): Promise<ThroughputResult> {
  const broker = await startBroker(PEER_CORE);
  const receiver = await startReceiver(PEER_CORE);
  let agent: Proc | undefined;
  try {
    const dir = initAgent(broker.url, receiver.url, AGENT_EDITS);
    agent = await startAgent(AGENT_CORE, dir);
    await sleep(300);
    const lines = benchLines(messages);
    const rss = sampleRss(agent.pid);
    const writtenBefore = writeBytes(agent.pid);
    const started = performance.now();
    await publishLines(broker.port, lines);
    await until(`${messages} readings verified at the receiver (agent log: ${agent.output().slice(-1500)})`, async () => (await receiver.readings()) >= messages, 300_000);
    const seconds = (performance.now() - started) / 1000;
    const writtenAfter = writeBytes(agent.pid);
    const peak = Math.max(...rss.stop());
    const stats = await receiver.stats();
    return {
      perS: messages / seconds,
      rssPeakMb: peak,
      bytesWrittenPerReading: writtenBefore !== undefined && writtenAfter !== undefined ? (writtenAfter - writtenBefore) / messages : undefined,
      receiverRejected: stats.rejected ?? 0,
    };
  } finally {
    await agent?.stop();
    await receiver.proc.stop();
    await broker.proc.stop();
  }
}

/** The ceiling: the same broker and publisher feeding a bare mqtt.js subscriber on the agent's core. */
export async function ceilingRun(messages: number): Promise<number> {
  const broker = await startBroker(PEER_CORE);
  const sub = startProc(AGENT_CORE, process.execPath, [new URL('./bare-subscriber.js', import.meta.url).pathname, broker.url, String(messages)]);
  try {
    await sub.waitFor(/ready/);
    await sleep(300);
    const lines = benchLines(messages);
    const started = performance.now();
    await publishLines(broker.port, lines);
    await sub.waitFor(/done/, 300_000);
    return messages / ((performance.now() - started) / 1000);
  } finally {
    await sub.stop();
    await broker.proc.stop();
  }
}

export interface LatencyResult {
  p50: number;
  p99: number;
  max: number;
  samples: number;
  /** Publishes the agent had not acknowledged when the run ended (should be 0). */
  unacked: number;
  rssPeakMb: number;
  coldStartMs: number[];
}

/**
 * Acknowledgement latency at a fixed rate: an mqtt.js publisher stamps each QoS 1 publish; the
 * proxy sees the agent's PUBACK for it (sent after the commit). Latency = that PUBACK minus the
 * publish, so it includes the broker hop. The first second is warm-up and not counted. Then cold
 * starts: stop the agent, queue one message for its session, start it, time to its first PUBACK.
 */
export async function latencyRun(rate: number, seconds: number, coldStarts: number): Promise<LatencyResult> {
  const broker = await startBroker(PEER_CORE);
  const receiver = await startReceiver(PEER_CORE);
  const sentAt = new Map<number, number>();
  const byMessageId = new Map<number, number>();
  const latencies: number[] = [];
  let firstPubackAt: number | undefined;
  let countFrom = Infinity;
  const proxy = new AckProxy(broker.port, {
    publish(messageId, payload) {
      const v = (JSON.parse(payload.toString()) as { v: number }).v;
      byMessageId.set(messageId, v);
    },
    puback(messageId, at) {
      firstPubackAt ??= at;
      const v = byMessageId.get(messageId);
      if (v === undefined) return;
      byMessageId.delete(messageId);
      const t = sentAt.get(v);
      sentAt.delete(v);
      if (t !== undefined && v >= countFrom) latencies.push(at - t);
    },
  });
  await proxy.start();
  const pub = mqtt.connect(broker.url, { protocolVersion: 4, clientId: `bench-pub-${process.pid}` });
  await new Promise<void>((res) => pub.once('connect', () => res()));
  let agent: Proc | undefined;
  let next = 0;
  const publish = () => {
    const v = next++;
    sentAt.set(v, performance.now());
    pub.publish('sensors/latency', `{"v":${v},"t":${1_763_000_000_000 + v}}`, { qos: 1 });
  };
  try {
    const dir = initAgent(proxy.url, receiver.url, AGENT_EDITS);
    agent = await startAgent(AGENT_CORE, dir);
    await sleep(300);
    const rss = sampleRss(agent.pid);
    const started = performance.now();
    const total = Math.round(rate * seconds);
    countFrom = rate; // after one second
    while (next < total) {
      const due = Math.min(total, Math.floor(((performance.now() - started) / 1000) * rate));
      while (next < due) publish();
      await sleep(2);
    }
    await until('the agent to acknowledge the last publishes', () => sentAt.size === 0, 10_000).catch(() => undefined);
    const unacked = sentAt.size;
    const rssPeakMb = Math.max(...rss.stop());

    const counted = [...latencies];
    countFrom = Infinity; // cold-start messages wait for the agent by design: not counted
    const coldStartMs: number[] = [];
    for (let i = 0; i < coldStarts; i++) {
      await agent.stop();
      agent = undefined;
      firstPubackAt = undefined;
      publish(); // queued by the broker for the agent's persistent session
      await sleep(200);
      const t0 = performance.now();
      agent = startProc(AGENT_CORE, process.execPath, [new URL('../../agent/cli/main.js', import.meta.url).pathname, 'run', '--data-dir', dir]);
      await until(`the first PUBACK after a cold start (agent log: ${agent.output().slice(-1500)})`, () => firstPubackAt !== undefined, 30_000);
      coldStartMs.push(firstPubackAt! - t0);
      await agent.waitFor(/connected to broker/);
    }
    return { p50: percentile(counted, 50), p99: percentile(counted, 99), max: Math.max(...counted), samples: counted.length, unacked, rssPeakMb, coldStartMs };
  } finally {
    await agent?.stop();
    await pub.endAsync();
    await proxy.stop();
    await receiver.proc.stop();
    await broker.proc.stop();
  }
}

export { rssMb };

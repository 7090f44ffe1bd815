import { randomBytes } from 'node:crypto';
import type { IClientOptions, MqttClient } from 'mqtt';
import { z } from 'zod';
import type { IntervalControl, IntervalOutcome } from '../contracts/interval-control.js';
import type { Logger } from '../log.js';
import { connectSideClient } from '../util/side-client.js';
import { topicMatches } from '../util/topic-filter.js';
import { RepeatedLog } from '../util/repeated-log.js';
import { INTERVAL_MAX_MS, INTERVAL_MIN_MS, type CommandsConfig } from './config.js';

/** An answer longer than this is not parsed (agent/adaptive/README.md): a device's ack is a few dozen bytes. */
export const MAX_ACK_BYTES = 512;
/** Requests waiting for an answer at once; more end at once as `timeout` (a flapping policy must not grow this). */
const MAX_PENDING = 1000;

const periodMs = z.number().int().min(0).max(INTERVAL_MAX_MS);
/** The device's answer on `<prefix>/<sensor>/set_interval/ack` (README): strict, so a typo is reported, not guessed. */
export const ackSchema = z.strictObject({
  request: z.string().min(1).max(64),
  status: z.enum(['applied', 'out_of_range', 'unknown_sensor', 'fixed']),
  interval_ms: periodMs,
  min_ms: periodMs.optional(),
  max_ms: periodMs.optional(),
});

/** '+', '#' and NUL may not appear in a topic name [MQTT-4.7.3-2]; sensor ids may hold them. */
const topicSafe = (sensor: string) => sensor.replace(/[+#\u0000]/g, '_');

/** Why an answer is not taken, or the answer: the checks of README "Answers", in order. */
export function parseAck(payload: Buffer): z.infer<typeof ackSchema> | string {
  if (payload.length > MAX_ACK_BYTES) return `longer than ${MAX_ACK_BYTES} bytes`;
  let json: unknown;
  try {
    json = JSON.parse(payload.toString('utf8'));
  } catch {
    return 'not JSON';
  }
  const r = ackSchema.safeParse(json);
  if (!r.success) {
    const first = r.error.issues[0]!;
    return `${first.path.join('.') || '(root)'}: ${first.message}`;
  }
  if (r.data.min_ms !== undefined && r.data.max_ms !== undefined && r.data.min_ms > r.data.max_ms) return 'min_ms above max_ms';
  return r.data;
}

interface Pending {
  sensor: string;
  timer: NodeJS.Timeout;
  resolve(o: IntervalOutcome): void;
}

/**
 * The MQTT command topic of adaptive reporting (agent/adaptive/README.md): publishes
 * `{"interval_ms": N, "request": "..."}` on `<prefix>/<sensor>/set_interval` (QoS 1, retained by
 * default) and waits `ack_timeout_ms` for the device's answer on `.../set_interval/ack`.
 */
export class MqttCommands implements IntervalControl {
  private client: MqttClient | undefined;
  private next = 1;
  /** Request ids are unique across restarts: a retained or late answer to an earlier run's request matches nothing. */
  private readonly run = randomBytes(4).toString('hex');
  private readonly pending = new Map<string, Pending>();
  private readonly badAck: RepeatedLog;
  readonly stats = { sent: 0, answered: 0, bad_acks: 0, timeouts: 0 };

  constructor(
    private readonly cfg: CommandsConfig,
    private readonly broker: { url: string; clientId: string; connect: Partial<IClientOptions> },
    private readonly log: Logger,
  ) {
    this.badAck = new RepeatedLog(log, 'warn', 'ignored a set_interval answer that breaks agent/adaptive/README.md');
  }

  async start(): Promise<void> {
    const client = await connectSideClient(this.broker.url, this.broker.clientId, this.broker.connect);
    this.client = client;
    client.on('connect', () => {
      this.log.info({ url: this.broker.url, prefix: this.cfg.topic_prefix }, 'interval commands connected');
      client.subscribe(`${this.cfg.topic_prefix}/#`, { qos: 1 }, (err) => {
        if (err) this.log.warn({ err }, 'could not subscribe to the set_interval answers; requests will time out');
      });
    });
    client.on('error', (err) => this.log.warn({ err, url: this.broker.url }, 'interval commands: broker error; retrying'));
    client.on('message', (topic, payload) => this.onMessage(topic, payload));
  }

  /** Resolves once subscribed to the answers (tests and `run --ready-fd` wait on facts). */
  async ready(): Promise<void> {
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const go = () => client.subscribe(`${this.cfg.topic_prefix}/#`, { qos: 1 }, () => resolve());
      if (client.connected) go();
      else client.once('connect', go);
    });
  }

  reaches(sensor: string): boolean {
    return this.client !== undefined && this.cfg.sensors.some((f) => topicMatches(f, sensor));
  }

  setInterval(sensor: string, intervalMs: number): Promise<IntervalOutcome> {
    const client = this.client;
    if (!client) return Promise.resolve({ status: 'not_connected', via: 'mqtt' });
    if (!Number.isInteger(intervalMs) || intervalMs < INTERVAL_MIN_MS || intervalMs > INTERVAL_MAX_MS) return Promise.resolve({ status: 'out_of_range', via: 'mqtt', minMs: INTERVAL_MIN_MS, maxMs: INTERVAL_MAX_MS });
    if (this.pending.size >= MAX_PENDING) return Promise.resolve({ status: 'timeout', via: 'mqtt' });
    const request = `${this.run}-${this.next++}`;
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(request);
        this.stats.timeouts++;
        resolve({ status: 'timeout', via: 'mqtt' });
      }, this.cfg.ack_timeout_ms);
      this.pending.set(request, { sensor, timer, resolve });
      this.stats.sent++;
      client.publish(`${this.cfg.topic_prefix}/${topicSafe(sensor)}/set_interval`, JSON.stringify({ interval_ms: intervalMs, request }), { qos: 1, retain: this.cfg.retain }, (err) => {
        if (err) this.log.warn({ err, sensor }, 'set_interval publish failed; the request will time out and be tried again');
      });
    });
  }

  private onMessage(topic: string, payload: Buffer): void {
    if (!topic.endsWith('/set_interval/ack')) return; // our own requests come back on the same subscription
    const ack = parseAck(payload);
    if (typeof ack === 'string') {
      this.stats.bad_acks++;
      this.badAck.report(new Error(ack), { topic, excerpt: payload.subarray(0, 64).toString('utf8') });
      return;
    }
    const p = this.pending.get(ack.request);
    const sensor = topic.slice(this.cfg.topic_prefix.length + 1, -'/set_interval/ack'.length);
    if (!p || topicSafe(p.sensor) !== sensor) return; // a stale answer, or one for another gateway's request
    clearTimeout(p.timer);
    this.pending.delete(ack.request);
    this.stats.answered++;
    p.resolve({ status: ack.status, via: 'mqtt', intervalMs: ack.interval_ms, ...(ack.min_ms !== undefined ? { minMs: ack.min_ms } : {}), ...(ack.max_ms !== undefined ? { maxMs: ack.max_ms } : {}) });
  }

  async stop(): Promise<void> {
    for (const [request, p] of this.pending) {
      clearTimeout(p.timer);
      p.resolve({ status: 'not_connected', via: 'mqtt' });
      this.pending.delete(request);
    }
    await this.client?.endAsync().catch(() => undefined);
  }
}

import type { IClientOptions, MqttClient } from 'mqtt';
import type { StoredVerdict } from '../identity/verdict-format.js';
import { connectSideClient } from '../util/side-client.js';
import { alertMessage } from './alert-message.js';
import type { Logger } from '../log.js';

export interface AlertPublisherOptions {
  url: string;
  clientId: string;
  /** Credentials and TLS for the broker (brokerConnectOptions of the MQTT source it shares). */
  connect: Partial<IClientOptions>;
  topicPrefix: string;
  retain: boolean;
  deviceId: string;
  /** The series' last committed reading, so the message names the value and unit an operator knows. */
  lastReading?: (series: string) => { value: number; unit?: string } | undefined;
}

/** '+', '#' and NUL may not appear in a topic name [MQTT-4.7.3-2]; sensor ids may hold them. */
function topicLevel(text: string): string {
  return text.replace(/[+#\u0000]/g, '_');
}

/**
 * Publishes each alert change (raised or cleared) as JSON, QoS 1, retained by default, on
 * `<prefix>/<model>/<series>`, so Node-RED or Home Assistant can react on the gateway itself.
 * The signed batch is the record; this is the local notification. mqtt.js keeps QoS 1
 * publishes made while the broker is away and sends them on reconnect.
 */
export class AlertPublisher {
  private client: MqttClient | undefined;
  published = 0;

  constructor(
    private readonly opts: AlertPublisherOptions,
    private readonly log: Logger,
  ) {}

  async start(): Promise<void> {
    this.client = await connectSideClient(this.opts.url, this.opts.clientId, this.opts.connect);
    this.client.on('connect', () => this.log.info({ url: this.opts.url, prefix: this.opts.topicPrefix }, 'alert publisher connected'));
    this.client.on('error', (err) => this.log.warn({ err, url: this.opts.url }, 'alert publisher: broker error; retrying'));
  }

  topicOf(v: Pick<StoredVerdict, 'modelId' | 'key'>): string {
    return `${this.opts.topicPrefix}/${topicLevel(v.modelId)}/${v.key.split('/').map(topicLevel).join('/')}`;
  }

  publish(v: StoredVerdict): void {
    if (!this.client) return;
    const reading = this.opts.lastReading?.(v.key);
    const payload = {
      message: alertMessage(v, reading),
      ...(reading ? { reading_value: reading.value, ...(reading.unit !== undefined ? { unit: reading.unit } : {}) } : {}),
      device: this.opts.deviceId,
      series: v.key,
      model: v.modelId,
      model_sha256: Buffer.from(v.modelSha256).toString('hex'),
      state: v.alert ? 'raised' : 'cleared',
      alert: v.alert,
      value: v.value,
      threshold: v.threshold,
      ...(v.score !== undefined ? { score: v.score } : {}),
      outputs: v.outputs,
      time: new Date(v.ts).toISOString(),
      ts: v.ts,
      window_start: v.windowStart,
      verdict_id: v.id,
      ...(v.readingId !== undefined ? { reading_id: v.readingId } : {}),
    };
    this.client.publish(this.topicOf(v), JSON.stringify(payload), { qos: 1, retain: this.opts.retain }, (err) => {
      if (err) this.log.warn({ err, series: v.key, model: v.modelId }, 'alert publish failed (the alert is in the signed batch regardless)');
      else this.published++;
    });
  }

  async stop(): Promise<void> {
    const c = this.client;
    if (!c) return;
    // Give queued alerts a moment to leave, then close.
    await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }
}

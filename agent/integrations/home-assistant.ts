import type { IClientOptions, MqttClient } from 'mqtt';
import type { StoredVerdict } from '../identity/verdict-format.js';
import { alertMessage } from '../inference/alert-message.js';
import { connectSideClient } from '../util/side-client.js';
import type { Logger } from '../log.js';
import type { StoredReading } from '../types.js';

/**
 * Home Assistant MQTT discovery (home-assistant.io/integrations/mqtt, "MQTT Discovery"): retained
 * `<prefix>/<component>/<node>/<object>/config` messages for the agent itself, every sensor it
 * stores (serial and CoAP sensors too, which HA could not see otherwise) and every anomaly series,
 * with an availability topic whose last will says `offline` when the agent dies. Sensor states are
 * the last committed value, published at most every `stateIntervalMs` per sensor; anomaly states
 * on every alert change. A side output: nothing in the run waits on it.
 */

export interface HomeAssistantOptions {
  url: string;
  clientId: string;
  connect: Partial<IClientOptions>;
  discoveryPrefix: string;
  /** Our own topics: `<base>/availability`, `<base>/sensor/...`, `<base>/anomaly/...`, `<base>/agent`. */
  baseTopic: string;
  nodeId: string;
  deviceId: string;
  stateIntervalMs: number;
  /** Sensors (and anomaly series) announced at most; later ids are counted, not announced (a flood of ids is not a flood of entities). */
  maxEntities: number;
  agentState: () => Record<string, number | string | boolean>;
}

/** SenML unit → Home Assistant unit and device class (HA's sensor device classes). */
const UNIT_MAP: Record<string, { unit: string; deviceClass?: string }> = {
  Cel: { unit: '°C', deviceClass: 'temperature' },
  '%RH': { unit: '%', deviceClass: 'humidity' },
  Pa: { unit: 'Pa', deviceClass: 'pressure' },
  hPa: { unit: 'hPa', deviceClass: 'pressure' },
  V: { unit: 'V', deviceClass: 'voltage' },
  A: { unit: 'A', deviceClass: 'current' },
  W: { unit: 'W', deviceClass: 'power' },
  kWh: { unit: 'kWh', deviceClass: 'energy' },
  lx: { unit: 'lx', deviceClass: 'illuminance' },
  '%': { unit: '%' },
  ppm: { unit: 'ppm', deviceClass: 'carbon_dioxide' },
  'm/s': { unit: 'm/s', deviceClass: 'wind_speed' },
};

/** Object ids and topic levels: HA allows [a-zA-Z0-9_-]; MQTT forbids + # in topic names [MQTT-4.7.3-2]. */
export const objectIdOf = (text: string) => text.replace(/[^a-zA-Z0-9_-]/g, '_').slice(0, 200);
const topicPath = (text: string) => text.split('/').map((l) => l.replace(/[+#\u0000]/g, '_') || '_').join('/');

export class HomeAssistant {
  private client: MqttClient | undefined;
  private timer: NodeJS.Timeout | undefined;
  private readonly announced = new Set<string>();
  private readonly last = new Map<string, { value: number; unit?: string; ts: number; dirty: boolean }>();
  overflow = 0;
  published = 0;

  constructor(
    private readonly opts: HomeAssistantOptions,
    private readonly log: Logger,
  ) {}

  get availabilityTopic(): string {
    return `${this.opts.baseTopic}/availability`;
  }

  private get device() {
    return { identifiers: [this.opts.nodeId], name: `edge-agent ${this.opts.nodeId.slice(-6)}`, manufacturer: 'edge-agent', model: 'IoT gateway agent', sw_version: '0.1.0' };
  }

  async start(): Promise<void> {
    // The broker says `offline` for us when we die or lose the link (MQTT 5 §3.1.2.5).
    this.client = await connectSideClient(this.opts.url, this.opts.clientId, this.opts.connect, {
      will: { topic: this.availabilityTopic, payload: Buffer.from('offline'), qos: 1, retain: true },
    });
    this.client.on('connect', () => {
      this.log.info({ url: this.opts.url, prefix: this.opts.discoveryPrefix }, 'home assistant discovery connected');
      // Announce again on every connect: a restarted broker without persistence forgot the retained configs.
      this.announcedOnBroker();
    });
    this.client.on('error', (err) => this.log.warn({ err, url: this.opts.url }, 'home assistant: broker error; retrying'));
    this.timer = setInterval(() => this.flushStates(), this.opts.stateIntervalMs);
    this.timer.unref();
  }

  /** Told every committed reading (from the side: a map update, no I/O). */
  noteReadings(readings: readonly StoredReading[]): void {
    for (const r of readings) {
      if (!this.last.has(r.sensor) && this.last.size >= this.opts.maxEntities) {
        this.overflow++;
        continue;
      }
      this.last.set(r.sensor, { value: r.value, ...(r.unit !== undefined ? { unit: r.unit } : {}), ts: r.ts, dirty: true });
    }
  }

  /** An alert raised or cleared (the inference stage's verdict sink). */
  publish(v: StoredVerdict): void {
    const key = `${v.modelId}/${v.key}`;
    const topic = `${this.opts.baseTopic}/anomaly/${topicPath(v.modelId)}/${topicPath(v.key)}`;
    this.announce(`binary_sensor/${objectIdOf(key)}`, {
      name: `${v.key} anomaly (${v.modelId})`,
      device_class: 'problem',
      state_topic: topic,
      value_template: '{{ value_json.state }}',
      json_attributes_topic: topic,
    });
    const reading = this.last.get(v.key);
    const payload = {
      state: v.alert ? 'ON' : 'OFF',
      model: v.modelId,
      score: v.score ?? null,
      threshold: v.threshold,
      value: reading?.value ?? null,
      unit: reading?.unit ?? null,
      reason: alertMessage(v, reading),
      time: new Date(v.ts).toISOString(),
    };
    this.send(topic, payload);
  }

  private announcedOnBroker(): void {
    this.client?.publish(this.availabilityTopic, 'online', { qos: 1, retain: true });
    const was = [...this.announced];
    this.announced.clear();
    this.announceAgent();
    for (const sensor of this.last.keys()) this.announceSensor(sensor);
    if (was.length > 0) this.log.debug({ entities: was.length }, 'home assistant discovery re-announced');
  }

  private announceAgent(): void {
    const topic = `${this.opts.baseTopic}/agent`;
    const entity = (id: string, name: string, extra: Record<string, unknown> = {}) =>
      this.announce(`sensor/agent_${id}`, { name, state_topic: topic, value_template: `{{ value_json.${id} }}`, entity_category: 'diagnostic', ...extra });
    entity('unbatched_readings', 'Readings waiting for a batch');
    entity('pending_batches', 'Batches waiting for the uplink');
    entity('uptime_s', 'Uptime', { unit_of_measurement: 's', device_class: 'duration' });
  }

  private announceSensor(sensor: string): void {
    const unit = this.last.get(sensor)?.unit;
    const mapped = unit !== undefined ? UNIT_MAP[unit] : undefined;
    this.announce(`sensor/${objectIdOf(sensor)}`, {
      name: sensor,
      state_topic: `${this.opts.baseTopic}/sensor/${topicPath(sensor)}`,
      value_template: '{{ value_json.value }}',
      state_class: 'measurement',
      ...(mapped ? { unit_of_measurement: mapped.unit, ...(mapped.deviceClass ? { device_class: mapped.deviceClass } : {}) } : unit !== undefined ? { unit_of_measurement: unit } : {}),
    });
  }

  private announce(path: string, config: Record<string, unknown>): void {
    if (this.announced.has(path) || !this.client?.connected) return;
    this.announced.add(path);
    const [component, object] = path.split('/') as [string, string];
    const body = { ...config, unique_id: `${this.opts.nodeId}_${object}`, object_id: `${this.opts.nodeId}_${object}`, availability_topic: this.availabilityTopic, device: this.device };
    this.send(`${this.opts.discoveryPrefix}/${component}/${this.opts.nodeId}/${object}/config`, body, true);
  }

  private flushStates(): void {
    if (!this.client?.connected) return;
    this.send(`${this.opts.baseTopic}/agent`, this.opts.agentState());
    for (const [sensor, s] of this.last) {
      if (!s.dirty) continue;
      this.announceSensor(sensor);
      this.send(`${this.opts.baseTopic}/sensor/${topicPath(sensor)}`, { value: s.value, unit: s.unit ?? null, time: new Date(s.ts).toISOString() });
      s.dirty = false;
    }
  }

  private send(topic: string, payload: unknown, retain = false): void {
    this.client?.publish(topic, JSON.stringify(payload), { qos: 1, retain }, (err) => {
      if (err) this.log.debug({ err, topic }, 'home assistant publish failed; it is sent again with the next state');
      else this.published++;
    });
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    const c = this.client;
    if (!c) return;
    // A clean stop says offline itself: the broker sends the will only for an unclean end.
    await new Promise<void>((resolve) => c.publish(this.availabilityTopic, 'offline', { qos: 1, retain: true }, () => resolve()));
    await new Promise<void>((resolve) => c.end(false, {}, () => resolve()));
  }
}

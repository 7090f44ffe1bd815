import { createHash } from 'node:crypto';
import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { describeTlsError } from '../../util/tls.js';
import { excerpt, ThrottledWarn } from '../../util/log-throttle.js';
import { parsePayload, sensorFromTopic, type ParseResult } from '../../payloads/parse.js';
import type { Source, SourceContext, SourceHealth } from '../source.js';
import type { MqttSourceConfig } from './config.js';
import { brokerConnectOptions } from './connection.js';
import { DeferredPubacks } from './deferred-puback.js';
import { topicMatches } from '../../util/topic-filter.js';

/**
 * Subscribes with QoS 1 on a persistent MQTT 5 session and sends each PUBACK only after the
 * message's readings are committed. mqtt.js calls `customHandleAcks` only with protocol
 * version 5 and handles the next packet only after the callback, so messages are committed
 * in arrival order; the broker keeps everything unacknowledged for the session.
 */
export class MqttSource implements Source {
  readonly id: string;
  private client: MqttClient | undefined;
  private readonly stats = { accepted: 0, duplicates: 0, rejected: 0 };
  private readonly rejectWarn: ThrottledWarn;
  private connected = false;
  private lastMessageAt: number | undefined;
  private lastError: string | undefined;
  private pubacks: DeferredPubacks | undefined;
  private stopping = false;
  private markSubscribed!: () => void;
  private readonly subscribed = new Promise<void>((resolve) => (this.markSubscribed = resolve));

  constructor(
    private readonly cfg: MqttSourceConfig,
    private readonly ctx: SourceContext,
  ) {
    this.id = ctx.id;
    this.rejectWarn = new ThrottledWarn(ctx.log);
  }

  async start(): Promise<void> {
    const log = this.ctx.log;
    const options: IClientOptions = {
      protocolVersion: 5,
      clean: false,
      clientId: this.cfg.client_id,
      keepalive: this.cfg.keepalive_s,
      reconnectPeriod: 2000,
      connectTimeout: 10_000,
      resubscribe: false,
      properties: {
        sessionExpiryInterval: this.cfg.session_expiry_s,
        maximumPacketSize: this.cfg.max_payload_bytes + 64 * 1024,
        // MQTT 5 Receive Maximum [MQTT-3.3.4-7]: the broker keeps at most this many QoS 1
        // messages unacknowledged with us, which bounds memory while commits are pending.
        receiveMaximum: this.cfg.max_inflight,
      },
      customHandleAcks: (topic, payload, packet, done) => {
        const commit = this.handleMessage(topic, payload, packet.messageId, packet.dup);
        const onFailure = (err: Error) => {
          // Not committed, so no PUBACK: the broker keeps the message and redelivers it after we reconnect.
          this.lastError = `store: ${err.message}`;
          log.error({ err, topic }, 'could not commit readings; dropping the connection so the broker redelivers');
          setTimeout(() => this.pubacks?.dropConnection(), 1000);
        };
        if (this.pubacks?.supported && packet.messageId !== undefined) {
          this.pubacks.track(packet.messageId, commit);
          commit.catch(onFailure);
          done(0);
          return;
        }
        commit.then(
          () => done(0),
          (err: Error) => {
            onFailure(err);
            done(err);
          },
        );
      },
    };
    Object.assign(options, brokerConnectOptions(this.cfg, this.id, this.ctx.resolvePath, log));

    const client = mqtt.connect(this.cfg.url, options);
    this.client = client;
    this.pubacks = new DeferredPubacks(client);
    if (!this.pubacks.supported) log.warn({ reason: this.pubacks.reason }, 'PUBACK deferral unavailable: acknowledging one message per commit (slower, still durable)');
    client.on('connect', (connack) => {
      this.connected = true;
      log.info({ url: this.cfg.url, session_present: connack.sessionPresent }, 'connected to broker');
      client.subscribe(this.cfg.topics, { qos: 1 }, (err, granted) => {
        if (err) {
          this.lastError = `subscribe: ${err.message}`;
          log.error({ err, topics: this.cfg.topics }, 'subscribe failed');
          return;
        }
        // Until the SUBACK, a new session has no subscription and the broker drops what sensors publish.
        log.info({ topics: this.cfg.topics, session_present: connack.sessionPresent }, 'subscribed with QoS 1');
        this.markSubscribed();
        for (const g of granted ?? []) {
          if (g.qos !== 1) {
            this.lastError = `broker granted ${g.topic} with code ${g.qos}, not QoS 1`;
            log.error({ topic: g.topic, granted: g.qos }, 'broker did not grant QoS 1: readings on this filter are not durable end to end');
          }
        }
      });
    });
    client.on('close', () => {
      if (this.connected && !this.stopping) log.warn({ url: this.cfg.url }, 'broker connection closed; reconnecting');
      this.connected = false;
    });
    client.on('error', (err) => {
      const text = describeTlsError(err) ?? err.message;
      // The same error at every reconnect is logged once at warn, then at debug.
      log[text === this.lastError ? 'debug' : 'warn']({ err: text, url: this.cfg.url }, 'mqtt error');
      this.lastError = text;
    });
  }

  private async handleMessage(topic: string, payload: Buffer, messageId: number | undefined, dup: boolean): Promise<void> {
    this.lastMessageAt = Date.now();
    const filter = this.cfg.topics.find((f) => topicMatches(f, topic)) ?? topic;
    let result: ParseResult;
    if (payload.length > this.cfg.max_payload_bytes) {
      result = { readings: [], rejections: [{ reason: `payload of ${payload.length} bytes exceeds max_payload_bytes ${this.cfg.max_payload_bytes}` }] };
    } else {
      const now = Date.now();
      result = parsePayload(payload, { defaultSensor: sensorFromTopic(filter, topic), nowMs: now, clockSynced: this.ctx.clock.isSynced(now) }, this.cfg.fields);
    }
    const rejected = result.rejections.map((r) => r.reason);
    if (rejected.length > 0) {
      this.stats.rejected += rejected.length;
      // Counted every time; logged at most once a minute per topic, with an excerpt to recognise it by.
      this.rejectWarn.warn(topic, { topic, reasons: rejected.slice(0, 5), payload_bytes: payload.length, excerpt: excerpt(payload) }, 'rejected payload');
    }
    const fingerprint = messageId === undefined ? undefined : createHash('sha256').update(topic).update('\0').update(payload).digest();
    const sub = {
      source: this.id,
      readings: result.readings,
      rejected,
      trackSeq: true,
      // A QoS 1 message redelivered after a lost PUBACK keeps its packet id and DUP is set [MQTT-3.3.1-1].
      ...(messageId !== undefined && fingerprint ? { resend: { key: String(messageId), fingerprint, resent: dup } } : {}),
    };
    const r = await this.ctx.sink.submit(sub);
    this.stats.accepted += r.accepted;
    this.stats.duplicates += r.duplicates;
  }

  /** Ready once the first SUBACK arrived: from then on the broker keeps what sensors publish for us. */
  ready(): Promise<void> {
    return this.subscribed;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => client.end(false, {}, () => resolve()));
    this.connected = false;
  }

  health(): SourceHealth {
    const h: SourceHealth = { type: 'mqtt', connected: this.connected, endpoint: `${this.cfg.url} ${this.cfg.topics.join(' ')}`, ...this.stats };
    if (this.lastMessageAt !== undefined) h.lastMessageAt = this.lastMessageAt;
    if (this.lastError !== undefined) h.lastError = this.lastError;
    return h;
  }
}

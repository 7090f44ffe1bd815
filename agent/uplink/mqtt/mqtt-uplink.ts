import mqtt, { type IClientOptions, type MqttClient, type Packet } from 'mqtt';
import { disableNagle } from '../../util/mqtt-no-delay.js';
import { describeTlsError, type TlsOptions } from '../../util/tls.js';
import { hex } from '../../identity/batch-format.js';
import type { Logger } from '../../log.js';
import { backoffDelay } from '../../util/backoff.js';
import type { DeliveryOutcome, OutgoingBatch, Uplink } from '../uplink.js';
import { ReplyBook, verifyReply } from './replies.js';
import { MQTT_CLIENT_MEMORY } from '../../util/mqtt-memory.js';

export interface MqttUplinkOptions {
  url: string;
  /** Topic the batches are published on (`{device}` already replaced). */
  topic: string;
  /** Topic the receiver answers on; subscribed only when `receiverKey` is set. */
  replyTopic: string;
  clientId: string;
  username?: string;
  password?: string;
  sessionExpiryS: number;
  keepaliveS: number;
  /** How long one attempt waits for the PUBACK (and the receipt). */
  timeoutMs: number;
  reconnectInitialMs: number;
  reconnectMaxMs: number;
  receiverKey?: Uint8Array;
  tls?: TlsOptions;
  /** Receives the `update` field of an answer on the reply topic (docs/updates.md §4). */
  onUpdate?: (base64: string) => void;
}

type PublishResult = { ok: true; reasonCode: number } | { ok: false; error: string };

const STALE_PUBLISH_WAITS = 3;

/** MQTT 5 PUBACK reason 0x10: accepted, but no subscription matched, so nobody will ever get it [MQTT-3.4.2.1]. */
const NO_MATCHING_SUBSCRIBERS = 0x10;

/**
 * Publishes each batch envelope with QoS 1 on a persistent MQTT 5 session. Delivered means
 * the broker acknowledged it (PUBACK) to at least one subscription and, when a receiver key
 * is configured, the receiver's signed receipt for this seq and hash arrived on the reply
 * topic. A publish still in flight when an attempt times out stays in mqtt.js's session
 * store, is resent by it after a reconnect, and is awaited by the next attempt at the same
 * seq instead of being published a second time.
 */
export class MqttUplink implements Uplink {
  readonly description: string;
  private client: MqttClient | undefined;
  private connected = false;
  private lastError = 'not connected yet';
  private reconnectFailures = 0;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private closing = false;
  private readonly inflight = new Map<number, { done: Promise<PublishResult>; result?: PublishResult; waits: number }>();
  private readonly pubackCodes = new Map<number, number>();
  private readonly replies = new ReplyBook();

  constructor(
    private readonly opts: MqttUplinkOptions,
    private readonly log: Logger,
  ) {
    this.description = `mqtt ${opts.url} ${opts.topic}`;
  }

  async deliver(batch: OutgoingBatch, signal: AbortSignal): Promise<DeliveryOutcome> {
    const client = this.ensureClient();
    const deadline = AbortSignal.any([signal, AbortSignal.timeout(this.opts.timeoutMs)]);
    if (this.opts.receiverKey) {
      // An answer from an earlier attempt (it came after that attempt timed out). One about another
      // hash at this seq is stale news, not this batch's answer: publish anyway.
      const early = this.replies.take(batch.seq);
      if (early && early.hash === hex(batch.hash)) return verifyReply(early, batch, this.opts.receiverKey);
    }
    let entry = this.inflight.get(batch.seq);
    // A publish that neither failed nor got its PUBACK over several attempts (and reconnects) is
    // given up and published again: a possible copy, which the receiver drops, beats a stall.
    if (entry && (entry.result ? !entry.result.ok : entry.waits >= STALE_PUBLISH_WAITS)) {
      this.inflight.delete(batch.seq);
      entry = undefined;
    }
    if (!entry) {
      if (!(await this.waitConnected(deadline))) return { kind: 'retry', error: `not connected to ${this.opts.url}: ${this.lastError}` };
      entry = { done: this.publish(client, batch), waits: 0 };
      const e = entry;
      void e.done.then((r) => (e.result = r));
      this.inflight.set(batch.seq, entry);
    }
    entry.waits++;
    const result = await raceAbort(entry.done, deadline);
    if (!result) return { kind: 'retry', error: `no PUBACK for batch ${batch.seq} within ${this.opts.timeoutMs} ms (${this.connected ? 'connected' : `disconnected: ${this.lastError}`})` };
    this.inflight.delete(batch.seq);
    if (!result.ok) return { kind: 'retry', error: result.error };
    if (result.reasonCode === NO_MATCHING_SUBSCRIBERS) {
      return { kind: 'retry', error: `broker has no subscriber for ${this.opts.topic} (PUBACK 0x10): the batch would be dropped, so it is kept and resent` };
    }
    if (!this.opts.receiverKey) return { kind: 'delivered' };
    const reply = await this.replies.wait(batch.seq, deadline);
    if (!reply) return { kind: 'retry', error: `broker acknowledged batch ${batch.seq} but no receipt came on ${this.opts.replyTopic} within ${this.opts.timeoutMs} ms` };
    return verifyReply(reply, batch, this.opts.receiverKey);
  }

  async close(): Promise<void> {
    this.closing = true;
    if (this.reconnectTimer) clearTimeout(this.reconnectTimer);
    const client = this.client;
    if (!client) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => client.end(true, {}, () => resolve()), 2000);
      client.end(false, {}, () => {
        clearTimeout(force);
        resolve();
      });
    });
  }

  private waitConnected(signal: AbortSignal): Promise<boolean> {
    if (this.connected) return Promise.resolve(true);
    if (signal.aborted) return Promise.resolve(false);
    const client = this.client!;
    return new Promise<boolean>((resolve) => {
      const finish = () => {
        client.off('connect', finish);
        signal.removeEventListener('abort', finish);
        resolve(this.connected);
      };
      client.on('connect', finish);
      signal.addEventListener('abort', finish, { once: true });
    });
  }

  private publish(client: MqttClient, batch: OutgoingBatch): Promise<PublishResult> {
    return new Promise<PublishResult>((resolve) => {
      client.publish(
        this.opts.topic,
        Buffer.from(batch.envelope.buffer, batch.envelope.byteOffset, batch.envelope.byteLength),
        { qos: 1, properties: { contentType: 'application/cbor', payloadFormatIndicator: false } },
        (err, packet) => {
          if (err) return resolve({ ok: false, error: `publish of batch ${batch.seq} failed: ${err.message}` });
          const id = (packet as { messageId?: number } | undefined)?.messageId;
          const reasonCode = id === undefined ? 0 : (this.pubackCodes.get(id) ?? 0);
          if (id !== undefined) this.pubackCodes.delete(id);
          resolve({ ok: true, reasonCode });
        },
      );
    });
  }

  private ensureClient(): MqttClient {
    if (this.client) return this.client;
    const o = this.opts;
    const options: IClientOptions = {
      ...MQTT_CLIENT_MEMORY,
      protocolVersion: 5,
      clean: false,
      clientId: o.clientId,
      keepalive: o.keepaliveS,
      // Reconnection is ours (below), with back-off; mqtt.js would retry at a fixed period.
      reconnectPeriod: 0,
      connectTimeout: Math.max(o.timeoutMs, 5000),
      resubscribe: false,
      properties: { sessionExpiryInterval: o.sessionExpiryS },
      ...(o.username !== undefined ? { username: o.username } : {}),
      ...(o.password !== undefined ? { password: o.password } : {}),
      ...(o.url.startsWith('mqtts://') ? (o.tls ?? {}) : {}),
    };
    const client = mqtt.connect(o.url, options);
    this.client = client;
    disableNagle(client);
    client.on('packetreceive', (packet: Packet) => {
      if (packet.cmd === 'puback' && packet.messageId !== undefined) this.pubackCodes.set(packet.messageId, packet.reasonCode ?? 0);
    });
    client.on('connect', (connack) => {
      this.connected = true;
      if (this.reconnectFailures > 0 || connack.sessionPresent === false) {
        this.log.info({ url: o.url, session_present: connack.sessionPresent, after_failures: this.reconnectFailures }, 'uplink connected to broker');
      }
      this.reconnectFailures = 0;
      if (o.receiverKey) {
        client.subscribe(o.replyTopic, { qos: 1 }, (err) => {
          if (err) {
            this.lastError = `subscribe ${o.replyTopic}: ${err.message}`;
            this.log.error({ err: err.message, topic: o.replyTopic }, 'cannot subscribe to the receipt topic; deliveries will wait');
          }
        });
      }
    });
    client.on('message', (topic, payload) => {
      if (topic !== o.replyTopic) return;
      const problem = this.replies.add(payload, this.opts.onUpdate);
      if (problem) this.log.warn({ topic, problem }, 'ignored a message on the receipt topic');
    });
    client.on('error', (err) => {
      const text = describeTlsError(err) ?? err.message;
      if (text !== this.lastError) this.log.warn({ url: o.url, err: text }, 'uplink broker error');
      this.lastError = text;
    });
    client.on('close', () => {
      if (this.connected) this.log.warn({ url: o.url }, 'uplink broker connection closed; reconnecting');
      this.connected = false;
      this.scheduleReconnect();
    });
    return client;
  }

  private scheduleReconnect(): void {
    if (this.closing || this.reconnectTimer) return;
    this.reconnectFailures++;
    const delay = backoffDelay(this.reconnectFailures, this.opts.reconnectInitialMs, this.opts.reconnectMaxMs);
    this.log.debug({ retry_in_ms: delay, failures: this.reconnectFailures }, 'uplink reconnect scheduled');
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      const c = this.client;
      // reconnect() without stores would start empty ones and forget the publishes in flight.
      if (c && !this.closing) c.reconnect({ incomingStore: c.incomingStore, outgoingStore: c.outgoingStore });
    }, delay);
  }
}

/** Resolves with the promise's value, or undefined once `signal` aborts. */
function raceAbort<T>(promise: Promise<T>, signal: AbortSignal): Promise<T | undefined> {
  if (signal.aborted) return Promise.resolve(undefined);
  return new Promise<T | undefined>((resolve) => {
    const onAbort = () => resolve(undefined);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort);
        resolve(v);
      },
      () => resolve(undefined),
    );
  });
}

import mqtt, { type IClientOptions, type MqttClient } from 'mqtt';
import { disableNagle } from '../util/mqtt-no-delay.js';
import { describeTlsError, type TlsOptions } from '../util/tls.js';
import type { Identity } from '../identity/keys.js';
import type { Logger } from '../log.js';
import { topicFor } from '../uplink/mqtt/config.js';
import { createBatchIntake } from './batch-intake.js';
import type { SensorKeyRegistry } from './sensor-key-registry.js';
import type { UpdateOutbox } from './update-outbox.js';
import type { ReceiverBackend } from './backend.js';
import { MQTT_CLIENT_MEMORY } from '../util/mqtt-memory.js';

export interface MqttBridgeOptions {
  url: string;
  /** Filter the agents publish batches on. */
  topic: string;
  /** Where the answer for a device goes; `{device}` is the device id from the verified signature. */
  replyTopic: string;
  clientId: string;
  tls?: TlsOptions;
  maxBodyBytes: number;
  /** What receipts promise (wire-format.md §12.10): 'disk' for SQLite, 'quorum' for the fleet. */
  durability?: 'disk' | 'quorum';
  /** The network's provisioned sensor keys (§12.9 step 11), as for HTTP. */
  sensorKeys?: SensorKeyRegistry;
}

export interface MqttBridge {
  close(): Promise<void>;
}

/**
 * The reference receiver's MQTT side: takes batches from a persistent QoS 1 subscription,
 * verifies and stores them exactly like `POST /v1/batches`, and publishes the same JSON
 * answer (with the signed receipt) to the reply topic of the device that signed the batch.
 * The PUBACK goes out after the store has committed, so the broker redelivers what a crash
 * interrupted.
 *
 * Never trusted: the device named in the topic (the reply goes to the signer's topic), and
 * anything of a batch whose signature fails. Such a batch gets no reply at all, because
 * someone holding a device's real batch could swap its signature and have the receiver tell
 * that device "rejected" about the real hash.
 */
export async function startMqttBridge(opts: MqttBridgeOptions, store: ReceiverBackend, identity: Identity, log: Logger, outbox?: UpdateOutbox): Promise<MqttBridge> {
  let client: MqttClient | undefined;
  const intake = createBatchIntake(store, identity, log, opts.durability ?? 'disk', outbox, opts.sensorKeys);
  const reply = (device: string, body: Record<string, unknown>) => {
    client?.publish(topicFor(opts.replyTopic, device), JSON.stringify(body), { qos: 1, properties: { contentType: 'application/json' } }, (err) => {
      if (err) log.warn({ err: err.message, device, seq: body.seq }, 'could not publish the reply; the agent resends and gets it then');
    });
  };

  const handle = async (topic: string, payload: Buffer): Promise<void> => {
    if (payload.length > opts.maxBodyBytes) {
      store.countRejection('too-large');
      log.warn({ topic, bytes: payload.length, limit: opts.maxBodyBytes }, 'batch rejected: too large');
      return;
    }
    const answer = await intake(new Uint8Array(payload.buffer, payload.byteOffset, payload.byteLength), Date.now());
    // §7.1: a batch that fails §6.1 gets no answer (an unverified batch names nobody).
    if (answer.kind === 'rejected' && !answer.verified) return;
    const signer = answer.reply.device as string;
    const named = topic.split('/').find((level) => level.startsWith('did:key:'));
    if (named !== undefined && named !== signer) log.warn({ topic, signer, seq: answer.reply.seq }, 'topic names another device than the signature; the signature wins');
    reply(signer, answer.reply);
  };

  const options: IClientOptions = {
    ...MQTT_CLIENT_MEMORY,
    protocolVersion: 5,
    clean: false,
    clientId: opts.clientId,
    reconnectPeriod: 1000,
    resubscribe: false,
    properties: { sessionExpiryInterval: 7 * 24 * 3600, maximumPacketSize: opts.maxBodyBytes + 64 * 1024 },
    ...(opts.url.startsWith('mqtts://') ? (opts.tls ?? {}) : {}),
    customHandleAcks: (topic, payload, _packet, done) => {
      handle(topic, payload).then(
        () => done(0),
        (err: unknown) => {
          // Not stored: no PUBACK, so the broker redelivers after the reconnect.
          log.error({ err, topic }, 'could not store a batch; dropping the connection so the broker redelivers');
          client?.stream.destroy();
        },
      );
    },
  };
  client = mqtt.connect(opts.url, options);
  const c = client;
  disableNagle(c);
  let lastError: string | undefined;
  c.on('connect', (connack) => {
    lastError = undefined;
    log.info({ url: opts.url, topic: opts.topic, session_present: connack.sessionPresent }, 'receiver subscribed to batches over MQTT');
    c.subscribe(opts.topic, { qos: 1 }, (err) => {
      if (err) log.error({ err: err.message, topic: opts.topic }, 'subscribe failed');
    });
  });
  c.on('error', (err) => {
    const text = describeTlsError(err) ?? err.message;
    // The same error at every reconnect: once at warn, then at debug.
    log[text === lastError ? 'debug' : 'warn']({ url: opts.url, err: text }, 'receiver mqtt error');
    lastError = text;
  });
  // Started subscribed when the broker is there; otherwise the receiver serves HTTP meanwhile and
  // the client keeps reconnecting (errors are logged above).
  const connected = await new Promise<boolean>((resolve) => {
    const timer = setTimeout(() => resolve(false), 10_000);
    c.once('connect', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
  if (!connected) log.warn({ url: opts.url }, 'broker not reachable yet; batches over MQTT are taken once it is');
  return {
    close: () =>
      new Promise<void>((resolve) => {
        const force = setTimeout(() => c.end(true, {}, () => resolve()), 2000);
        c.end(false, {}, () => {
          clearTimeout(force);
          resolve();
        });
      }),
  };
}

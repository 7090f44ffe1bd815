import { z } from 'zod';
import { didKeySchema } from '../../identity/did-key-schema.js';
import { urlPortProblem } from '../../util/port-range.js';
import { tlsSchema } from '../../util/tls.js';

/** `{device}` in a topic stands for the device id (did:key:...), so one config fits every gateway. */
export const DEVICE_PLACEHOLDER = '{device}';

const topicName = z
  .string()
  .min(1)
  .max(1024)
  // A topic name, not a filter: no wildcards [MQTT-3.3.2-2], no NUL [MQTT-1.5.4-2].
  .refine((t) => !/[+#\u0000]/.test(t), 'must be a topic name without the wildcards + and #');

export const mqttUplinkSchema = z
  .strictObject({
    type: z.literal('mqtt'),
    url: z
      .string()
      .regex(/^mqtts?:\/\/[^/\s]+$/, 'must be mqtt://HOST:PORT or mqtts://HOST:PORT')
      .refine((u) => urlPortProblem(u) === undefined, { error: (i) => urlPortProblem(String(i.input)) ?? 'bad port' }),
    /** Batches are published here with QoS 1; the payload is the signed envelope (docs/wire-format.md). */
    topic: topicName.default(`edge/${DEVICE_PLACEHOLDER}/batches`),
    /** With receiver_key: the receiver's replies (signed receipts) arrive here, matched by seq. */
    reply_topic: topicName.default(`edge/${DEVICE_PLACEHOLDER}/receipts`),
    /** did:key of the receiver; when set, a PUBACK is not enough: every delivery needs its signed receipt. */
    receiver_key: didKeySchema.optional(),
    /** did:key of the network key to seal every batch to (docs/wire-format.md §12.6). */
    encrypt_to: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/, 'must be an Ed25519 did:key (did:key:z6Mk...)').pipe(didKeySchema).optional(),
    /** Must be stable and unique (not the MQTT source's): the broker keeps the session under it. Default: derived from the device id. */
    client_id: z.string().min(1).max(64).optional(),
    username: z.string().optional(),
    /** File holding the password (kept out of the config so the config can be shared). */
    password_file: z.string().optional(),
    session_expiry_s: z.number().int().min(60).default(7 * 24 * 3600),
    keepalive_s: z.number().int().min(5).max(3600).default(30),
    /** How long one attempt waits for the PUBACK (and the receipt). */
    timeout_ms: z.number().int().min(100).default(10_000),
    retry_initial_ms: z.number().int().min(10).default(500),
    retry_max_ms: z.number().int().min(10).default(60_000),
    /** Upper bound on deliveries per second, so a backlog drains without saturating a thin uplink; 0 = no limit. */
    max_batches_per_s: z.number().min(0).default(0),
    tls: tlsSchema.optional(),
  })
  .refine((c) => c.tls === undefined || c.url.startsWith('mqtts://'), { message: 'is set but url is mqtt://: use mqtts:// for TLS', path: ['tls'] })
  // Brokers check a password per user, and mqtt.js never settles a CONNECT with a password but no user name.
  .refine((c) => c.password_file === undefined || c.username !== undefined, { message: 'needs username (brokers check the password per user)', path: ['password_file'] });

export type MqttUplinkConfig = z.infer<typeof mqttUplinkSchema>;

export function defaultUplinkClientId(deviceId: string): string {
  return `edge-agent-uplink-${deviceId.slice('did:key:z'.length, 'did:key:z'.length + 16)}`;
}

export function topicFor(template: string, deviceId: string): string {
  return template.split(DEVICE_PLACEHOLDER).join(deviceId);
}

import { z } from 'zod';
import { urlPortProblem } from '../../util/port-range.js';
import { tlsSchema } from '../../util/tls.js';
import { isValidTopicFilter } from '../../util/topic-filter.js';

export const mqttSourceSchema = z.strictObject({
  type: z.literal('mqtt'),
  url: z
    .string()
    .regex(/^mqtts?:\/\/[^/]+$/, 'must be mqtt://HOST:PORT or mqtts://HOST:PORT')
    .refine((u) => urlPortProblem(u) === undefined, { error: (i) => urlPortProblem(String(i.input)) ?? 'bad port' }),
  topics: z.array(z.string().min(1).max(1024).refine(isValidTopicFilter, 'is not a valid MQTT topic filter (MQTT 3.1.1 §4.7.1)')).min(1),
  /** Must be stable across restarts: the broker keeps the persistent session under it. */
  client_id: z.string().min(1).max(64),
  session_expiry_s: z.number().int().min(60).default(7 * 24 * 3600),
  max_payload_bytes: z.number().int().min(16).max(16 * 1024 * 1024).default(256 * 1024),
  username: z.string().optional(),
  /** File holding the password (kept out of the config so the config can be shared). */
  password_file: z.string().optional(),
  keepalive_s: z.number().int().min(5).max(3600).default(30),
  /** QoS 1 messages the broker may have unacknowledged with us (MQTT 5 Receive Maximum). */
  max_inflight: z.number().int().min(1).max(65535).default(1000),
  /** TLS for mqtts:// (certificate verification on by default; CA, client certificate for mutual TLS). */
  tls: tlsSchema.optional(),
  /**
   * JSON objects of named fields (Zigbee2MQTT, Tasmota, Shelly): which fields become readings and
   * their units (agent/payloads/device-json.ts; README "Common device payloads").
   */
  fields: z
    .strictObject({
      include: z.array(z.string().min(1).max(256)).max(256).optional(),
      exclude: z.array(z.string().min(1).max(256)).max(256).optional(),
      units: z.record(z.string().min(1).max(256), z.string().min(1).max(32)).optional(),
    })
    .optional(),
}).refine((c) => c.tls === undefined || c.url.startsWith('mqtts://'), { message: 'is set but url is mqtt://: use mqtts:// for TLS', path: ['tls'] });

export type MqttSourceConfig = z.infer<typeof mqttSourceSchema>;

import { z } from 'zod';
import { httpSchema } from '../health/config.js';
import { coapObserveSourceSchema } from '../sources/coap-observe/config.js';
import { coapServerSourceSchema } from '../sources/coap-server/config.js';
import { mqttSourceSchema } from '../sources/mqtt/config.js';
import { serialSourceSchema } from '../sources/serial/config.js';
import { simulatorSourceSchema } from '../sources/simulator/config.js';

// Strict objects everywhere: an unknown key is a typo the operator wants to hear about.

const sourceSchema = z.discriminatedUnion('type', [mqttSourceSchema, coapServerSourceSchema, coapObserveSourceSchema, serialSourceSchema, simulatorSourceSchema]);

const httpUplinkSchema = z.strictObject({
  type: z.literal('http'),
  url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL'),
  /** did:key of the receiver; when set, every delivery must come with a receipt it signed. */
  receiver_key: z.string().optional(),
  timeout_ms: z.number().int().min(100).default(10_000),
  retry_initial_ms: z.number().int().min(10).default(500),
  retry_max_ms: z.number().int().min(10).default(60_000),
  /** Upper bound on deliveries per second, so a backlog drains without saturating a thin uplink; 0 = no limit. */
  max_batches_per_s: z.number().min(0).default(0),
});

export const configSchema = z.strictObject({
  version: z.literal(1),
  device: z.strictObject({
    key_file: z.string().min(1).default('device.key'),
  }),
  store: z.strictObject({
    path: z.string().min(1).default('edge-agent.db'),
    /** Delivered batches and their readings are deleted this long after delivery; undelivered data never is. */
    retain_delivered_hours: z.number().min(0).max(24 * 365).default(24),
  }),
  batch: z.strictObject({
    /**
     * A batch is cut when this many readings wait ... The cap keeps a batch of the longest
     * readings (256-character sensor ids, ~330 bytes each) well under a receiver's 8 MiB limit.
     */
    max_readings: z.number().int().min(1).max(10_000).default(1000),
    /** ... or when the oldest waiting reading is this old. */
    max_age_ms: z.number().int().min(10).default(5000),
  }),
  sources: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'source ids are lowercase letters, digits, - and _'), sourceSchema),
  uplink: httpUplinkSchema.optional(),
  /** Health, metrics and status page endpoint; absent = not served. */
  http: httpSchema.optional(),
  clock: z.strictObject({
    /** auto: trust the OS's NTP status; always/never: override it (e.g. a board with a GPS clock). */
    synced: z.enum(['auto', 'always', 'never']).default('auto'),
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  }),
});

export type AgentConfig = z.infer<typeof configSchema>;
export type SourceConfig = z.infer<typeof sourceSchema>;
export type HttpUplinkConfig = z.infer<typeof httpUplinkSchema>;

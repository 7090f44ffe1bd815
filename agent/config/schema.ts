import { z } from 'zod';
import { inferenceSchema } from '../inference/config.js';
import { httpSchema } from '../health/config.js';
import { coapObserveSourceSchema } from '../sources/coap-observe/config.js';
import { coapServerSourceSchema } from '../sources/coap-server/config.js';
import { mqttSourceSchema } from '../sources/mqtt/config.js';
import { serialSourceSchema } from '../sources/serial/config.js';
import { simulatorSourceSchema } from '../sources/simulator/config.js';
import { mqttUplinkSchema } from '../uplink/mqtt/config.js';
import { tlsSchema } from './tls.js';

// Strict objects everywhere: an unknown key is a typo the operator wants to hear about.

const sourceSchema = z.discriminatedUnion('type', [mqttSourceSchema, coapServerSourceSchema, coapObserveSourceSchema, serialSourceSchema, simulatorSourceSchema]);

const httpUplinkSchema = z.strictObject({
  type: z.literal('http'),
  url: z.string().regex(/^https?:\/\/\S+$/, 'must be an http:// or https:// URL'),
  /** did:key of the receiver; when set, every delivery must come with a receipt it signed. */
  receiver_key: z.string().optional(),
  /** did:key of the network key to seal every batch to (docs/wire-format.md §12.6): relays see headers, not data. */
  encrypt_to: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/, 'must be an Ed25519 did:key (did:key:z6Mk...)').optional(),
  timeout_ms: z.number().int().min(100).default(10_000),
  retry_initial_ms: z.number().int().min(10).default(500),
  retry_max_ms: z.number().int().min(10).default(60_000),
  /** Upper bound on deliveries per second, so a backlog drains without saturating a thin uplink; 0 = no limit. */
  max_batches_per_s: z.number().min(0).default(0),
  /** For https:// URLs: custom CA, client certificate (mutual TLS), servername. */
  tls: tlsSchema.optional(),
}).refine((c) => c.tls === undefined || c.url.startsWith('https://'), { message: 'is set but url is http://: use https:// for TLS', path: ['tls'] });

const uplinkSchema = z.discriminatedUnion('type', [httpUplinkSchema, mqttUplinkSchema]);

export const configSchema = z.strictObject({
  version: z.literal(1),
  device: z.strictObject({
    key_file: z.string().min(1).default('device.key'),
  }),
  store: z.strictObject({
    path: z.string().min(1).default('edge-agent.db'),
    /** Delivered batches and their readings are deleted this long after delivery; undelivered data never is. */
    retain_delivered_hours: z.number().min(0).max(24 * 365).default(24),
    /**
     * Disk budget of the store (database + WAL) in bytes; 0 = none (a full disk is still survived,
     * README "Disk budget"). Over it, delivered data goes first, then the oldest readings not yet
     * in a batch, each drop counted per sensor and reported upstream.
     */
    max_bytes: z.number().int().min(0).refine((n) => n === 0 || n >= 1024 * 1024, 'must be 0 (no budget) or at least 1048576 (1 MiB)').default(0),
  }),
  batch: z.strictObject({
    /**
     * A batch is cut when this many readings wait ... The cap keeps a batch of the longest
     * readings (256-character sensor ids, ~330 bytes each) well under a receiver's 8 MiB limit.
     */
    max_readings: z.number().int().min(1).max(10_000).default(1000),
    /** ... or when the oldest waiting reading is this old. */
    max_age_ms: z.number().int().min(10).default(5000),
    /**
     * While this many signed batches wait for the uplink, no new batch is cut: readings stay in the
     * store unbatched (durable, acknowledged), where the disk budget may drop the oldest. Signed
     * batches are never dropped (that would break the chain). Applies only with an uplink.
     */
    max_pending: z.number().int().min(1).default(100),
    /**
     * Wire format of new batches: auto = the lowest version that carries each batch (1 or 2 as
     * before; 3 for events, flags, sealing); 3 = always version 3, so every reading has a
     * single-reading proof (docs/wire-format.md §12.12).
     */
    format: z.union([z.literal('auto'), z.literal(3)]).default('auto'),
  }),
  sources: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'source ids are lowercase letters, digits, - and _'), sourceSchema),
  uplink: uplinkSchema.optional(),
  /** On-device models: which model judges which sensors (agent/inference/config.ts). */
  inference: inferenceSchema.optional(),
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
export type UplinkConfig = z.infer<typeof uplinkSchema>;

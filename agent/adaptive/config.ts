import { z } from 'zod';
import { isValidTopicFilter } from '../util/topic-filter.js';

/** firmware-bridge/PROTOCOL.md §3.10: the periods any request may name (10 ms .. one day); the MQTT convention keeps the same. */
export const INTERVAL_MIN_MS = 10;
export const INTERVAL_MAX_MS = 86_400_000;

const intervalMs = z.number().int().min(INTERVAL_MIN_MS).max(INTERVAL_MAX_MS);
const filters = z.array(z.string().min(1).max(256).refine(isValidTopicFilter, 'is not a valid filter (+ and # as whole levels)')).min(1).max(64);
const modelId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a model id of the manifest');
const topicPrefix = z
  .string()
  .min(1)
  .max(256)
  .refine((t) => !/[+#\u0000]/.test(t) && !t.endsWith('/') && !t.startsWith('/'), 'no wildcards, no leading or trailing /');

/**
 * One rule of the reporting policy (agent/adaptive/README.md): the first rule whose `sensors`
 * match a sensor decides its interval: `healthy_interval_ms` while calm, `alert_interval_ms`
 * while an alert is raised on the sensor's own series (or on any series `alert_on` matches: an
 * asset's RUL model, say), by any model or only those `models` names.
 */
const ruleSchema = z
  .strictObject({
    sensors: filters,
    healthy_interval_ms: intervalMs,
    alert_interval_ms: intervalMs,
    alert_on: filters.optional(),
    models: z.array(modelId).min(1).max(64).optional(),
  })
  .refine((r) => r.alert_interval_ms <= r.healthy_interval_ms, { message: 'alert_interval_ms must not be longer than healthy_interval_ms (fast while an alert is raised)', path: ['alert_interval_ms'] });

/**
 * The MQTT command topic (agent/adaptive/README.md): `<topic_prefix>/<sensor>/set_interval`
 * with `{"interval_ms": N, "request": "..."}`, answered on `.../set_interval/ack`.
 */
const commandsSchema = z.strictObject({
  /** The broker: an MQTT source to share (default: the only one), or a url of its own. */
  mqtt_source: z.string().optional(),
  url: z.string().regex(/^mqtts?:\/\/[^/]+$/, 'must be mqtt://HOST:PORT or mqtts://HOST:PORT').optional(),
  topic_prefix: topicPrefix.default('edge-agent/devices'),
  /** Which sensors are commanded over MQTT (serial sensors always go over their line). */
  sensors: filters.default(['#']),
  ack_timeout_ms: z.number().int().min(100).max(600_000).default(5000),
  /** Retained, so a device that connects later finds the interval it should use. */
  retain: z.boolean().default(true),
});

/**
 * Uplink summary mode for metered links: readings of `sensors` are kept in the store but not
 * uploaded while calm; each `interval_ms` a signed `report.summary` event (min, max, mean, count)
 * goes instead; around an alert (`before_alert_ms` before it, until `after_alert_ms` after it
 * clears) they are uploaded in full. Kept ones are deleted after store.retain_delivered_hours, and
 * `edge-agent upload` releases a range of them for upload on request.
 */
const summarySchema = z.strictObject({
  sensors: filters,
  interval_ms: z.number().int().min(1000).max(INTERVAL_MAX_MS).default(60_000),
  before_alert_ms: z.number().int().min(0).max(INTERVAL_MAX_MS).default(300_000),
  after_alert_ms: z.number().int().min(0).max(INTERVAL_MAX_MS).default(300_000),
});

export const adaptiveSchema = z.strictObject({
  policy: z.array(ruleSchema).min(1).max(256).optional(),
  commands: commandsSchema.optional(),
  summary: summarySchema.optional(),
  /** A request that failed (no answer, device away) is tried again after this long. */
  retry_s: z.number().int().min(1).max(86_400).default(30),
});

export type AdaptiveConfig = z.infer<typeof adaptiveSchema>;
export type PolicyRule = z.infer<typeof ruleSchema>;
export type CommandsConfig = z.infer<typeof commandsSchema>;
export type SummaryConfig = z.infer<typeof summarySchema>;

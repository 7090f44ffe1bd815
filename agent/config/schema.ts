import { z } from 'zod';
import { inferenceSchema } from '../inference/config.js';
import { guardSchema } from '../guard/config.js';
import { httpSchema } from '../health/config.js';
import { adaptiveSchema } from '../adaptive/config.js';
import { updateSchema } from '../update/config.js';
import { sourceSchema, type SourceConfig } from '../sources/registry.js';
import { uplinkSchema, type UplinkConfig } from '../uplink/registry.js';

export type { SourceConfig, UplinkConfig };
export type { HttpUplinkConfig } from '../uplink/http/config.js';

// Strict objects everywhere: an unknown key is a typo the operator wants to hear about.

// Source and uplink schemas come from their plugin folders, one registry line each (sources/registry.ts, uplink/registry.ts).

/**
 * store.commit_interval_ms by default: chosen by measurement (docs/performance.md, "Flash wear, fifth
 * round"): 20 sensors at 1 Hz write 1,392 MB/day at 5000 against 2,483 at 1000. Only the broker waits:
 * an MQTT sensor's PUBACK comes from its broker (MQTT 4.3.2), not from us; serial and CoAP readings
 * commit within 250 ms whatever this is (Submission.commitWithinMs), and 64 readings gathered within 1 s
 * (or 256 at any rate) commit at once (pipeline/group-commit.ts).
 */
export const DEFAULT_COMMIT_INTERVAL_MS = 5000;

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
    /**
     * Flash wear (issue 13): at a low rate, readings arriving within this many ms of the first one
     * waiting share one commit (one fsync, each page written once) instead of one commit each.
     * Acknowledgements still wait for the commit, so this is the worst added ack latency; a commit
     * is due at once when COALESCE_READINGS gathered within FAST_FILL_MS (high rates) or MAX_COALESCE_READINGS
     * wait. 0 = commit at once. Sources
     * whose senders resend after a timer (serial, CoAP) cap it for their readings (commitWithinMs).
     */
    commit_interval_ms: z.number().int().min(0).max(5000).default(DEFAULT_COMMIT_INTERVAL_MS),
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
  /** Guarding the edge (agent/guard/config.ts): physical ranges, quality checks, budgets, quarantine; on with defaults when absent. */
  guard: guardSchema.prefault({}),
  /** On-device models: which model judges which sensors (agent/inference/config.ts). */
  inference: inferenceSchema.optional(),
  /** Health, metrics and status page endpoint; absent = not served. */
  http: httpSchema.optional(),
  /**
   * Home Assistant MQTT discovery (agent/integrations/home-assistant.ts): the agent, each sensor and
   * each anomaly series as entities, with availability (last will) on the sensors' broker.
   */
  home_assistant: z
    .strictObject({
      discovery_prefix: z.string().min(1).max(128).regex(/^[^+#]+$/, 'must not hold MQTT wildcards').default('homeassistant'),
      /** Our state topics live under this; default edge-agent/<node id>. */
      base_topic: z.string().min(1).max(128).regex(/^[^+#]+$/, 'must not hold MQTT wildcards').optional(),
      /** The broker: its own url, or the MQTT source to share (default: the only one). */
      url: z.string().regex(/^mqtts?:\/\/[^/]+$/, 'must be mqtt://HOST:PORT or mqtts://HOST:PORT').optional(),
      mqtt_source: z.string().optional(),
      state_interval_s: z.number().int().min(1).max(3600).default(10),
      max_entities: z.number().int().min(1).max(10_000).default(500),
    })
    .optional(),
  /** Adaptive reporting: interval policy, MQTT command topic, uplink summary mode (agent/adaptive/README.md). */
  adaptive: adaptiveSchema.optional(),
  /** Signed remote updates of the model set or the config (docs/updates.md); absent = none taken. */
  update: updateSchema.optional(),
  /** Signed heartbeats (agent.heartbeat events in the chain) every interval_s, even without readings; 0 = none. */
  heartbeat: z.strictObject({
    interval_s: z.number().int().refine((n) => n === 0 || n >= 5, 'must be 0 (no heartbeats) or at least 5').default(300),
  }).prefault({}),
  clock: z.strictObject({
    /** auto: trust the OS's NTP status; always/never: override it (e.g. a board with a GPS clock). */
    synced: z.enum(['auto', 'always', 'never']).default('auto'),
    /** A jump of the wall clock against the monotonic clock larger than this is a step (an event, readings flagged). */
    step_threshold_ms: z.number().int().min(100).default(2000),
    /** After a step, gateway-timed readings are flagged not synchronised (q = 2) until the clock has gone this long without another. */
    step_settle_s: z.number().int().min(1).default(600),
  }),
  log: z.strictObject({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace']).default('info'),
  }),
});

export type AgentConfig = z.infer<typeof configSchema>;

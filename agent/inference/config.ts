import { z } from 'zod';
import { isValidTopicFilter } from '../util/topic-filter.js';
import { didKeySchema } from '../identity/did-key-schema.js';

const modelId = z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a model id of the manifest');

/**
 * Which model judges which sensors. A single-channel model takes `sensors` (MQTT-style filters
 * over sensor ids: `pump1/#`, `+/temp`), each matching sensor being its own series; a
 * multivariate model takes one `asset` and its `channels` (model feature -> sensor id).
 */
const bindingSchema = z
  .strictObject({
    model: modelId,
    sensors: z.array(z.string().min(1).max(256).refine(isValidTopicFilter, 'is not a valid filter (+ and # as whole levels)')).min(1).optional(),
    asset: z.string().min(1).max(256).optional(),
    channels: z.record(z.string().min(1), z.string().min(1).max(256)).optional(),
    /** Overrides the model's warm-up length (rows) for a warm-up-calibrated model. */
    warmup: z.number().int().min(2).optional(),
    /**
     * Overrides the model's alert rule (manifest `alert`, agent/inference/README.md §6) for this
     * binding: raise at `on`, clear past `off`, after so many consecutive values. Changes apply
     * live on reload (SIGHUP); each verdict carries the threshold it was judged by.
     */
    alert: z
      .strictObject({
        on: z.number().finite().optional(),
        off: z.number().finite().optional(),
        on_count: z.number().int().min(1).max(10_000).optional(),
        off_count: z.number().int().min(1).max(10_000).optional(),
      })
      .optional(),
    /** Series beyond this many for one binding are not scored (counted as inference_unscored). */
    max_series: z.number().int().min(1).max(100_000).default(1000),
  })
  .superRefine((b, ctx) => {
    const single = b.sensors !== undefined;
    const group = b.asset !== undefined || b.channels !== undefined;
    if (single === group) ctx.addIssue({ code: 'custom', path: [], message: 'give either sensors (single-channel model) or asset and channels (multivariate model)' });
    if (group && (b.asset === undefined || b.channels === undefined)) ctx.addIssue({ code: 'custom', path: [b.asset === undefined ? 'asset' : 'channels'], message: 'asset and channels go together' });
  });

export const inferenceSchema = z.strictObject({
  /** Directory holding manifest.json; default: the models shipped with edge-agent. */
  models_dir: z.string().min(1).optional(),
  /** did:key of the model publisher: when set, manifest.json must carry its signature (manifest.json.sig). */
  publisher_key: z.string().regex(/^did:key:z6Mk[1-9A-HJ-NP-Za-km-z]+$/, 'must be an ed25519 did:key (did:key:z6Mk...)').pipe(didKeySchema).optional(),
  bindings: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'binding ids are lowercase letters, digits, - and _'), bindingSchema),
  /**
   * Committed readings waiting for inference beyond this are not scored (counted as
   * inference_skipped), so a slow model never holds up storage and memory stays bounded: 20,000
   * is 4 s at 5,000 readings/s. During an MQTT burst the models share the one event loop with
   * ingest and fall behind (measured: 200,000 QoS 1 readings at full speed held 100,000 here).
   */
  max_queue: z.number().int().min(100).max(10_000_000).default(20_000),
  /** A binding that has matched no sensor after this many readings is warned about (log, status, /healthz). */
  unmatched_warn_after: z.number().int().min(1).max(100_000_000).default(1000),
  /**
   * Which verdicts are stored, signed and delivered (issue 13; docs/wire-format.md §4.4 "Which
   * verdicts a batch carries"). informative: those that raise or clear an alert, every verdict
   * while an alert stands (the scores the alert relies on), verdicts with flags, and one per series
   * per `verdict_keyframe_s` of its readings' time (the model's score level, and that it ran);
   * the rest are counted (status: inference.verdictsElided), not stored. all: every verdict.
   */
  verdicts: z.enum(['informative', 'all']).default('informative'),
  /** Under verdicts: informative, a series' score is kept at least this often (its readings' time). */
  verdict_keyframe_s: z.number().int().min(1).max(86_400).default(60),
  /**
   * How often each series' state (warm-up, calibration, window) is saved, so a restart resumes it
   * (and at a clean stop). 300 by measurement (flash wear, issue 13): 20 stream-ad series save ~40 KB
   * a time, 58 MB/day at 60 against 12 at 300; a power cut loses at most 5 minutes of learning.
   */
  state_save_interval_s: z.number().int().min(1).max(86_400).default(300),
  /** Alert changes are also published here, for Node-RED or Home Assistant. */
  alerts: z
    .strictObject({
      /** Id of an MQTT source whose broker (and credentials) to publish on; default: the only MQTT source. */
      mqtt_source: z.string().optional(),
      /** Or a broker of its own. */
      url: z.string().regex(/^mqtts?:\/\/[^/]+$/, 'must be mqtt://HOST:PORT or mqtts://HOST:PORT').optional(),
      topic_prefix: z
        .string()
        .min(1)
        .max(512)
        .refine((t) => !/[+#\u0000]/.test(t) && !t.endsWith('/'), 'no wildcards, no trailing /')
        .default('edge-agent/alerts'),
      /** Retained, so a dashboard that subscribes later sees each series' current state. */
      retain: z.boolean().default(true),
    })
    .optional(),
});

export type InferenceConfig = z.infer<typeof inferenceSchema>;
export type BindingConfig = z.infer<typeof bindingSchema>;

import { z } from 'zod';
import { isValidTopicFilter } from '../util/topic-filter.js';

/** A physical range: readings outside [min, max] are flagged out_of_range (docs/wire-format.md §12.3). */
const rangeSchema = z
  .strictObject({ min: z.number().refine(Number.isFinite, 'must be finite'), max: z.number().refine(Number.isFinite, 'must be finite') })
  .refine((r) => r.min < r.max, { message: 'min must be below max', path: ['max'] });

const filter = z.string().min(1).max(256).refine(isValidTopicFilter, 'is not a valid filter over sensor ids (+ and # as whole levels)');

/** What one source instance may send before its excess is dropped, and what makes it quarantined. */
const sourcePolicySchema = z.strictObject({
  /** Readings per second one sensor may send (token bucket, `sensor_burst` deep); the excess is dropped and counted. 0 = no budget. */
  sensor_per_s: z.number().min(0).max(1_000_000).optional(),
  sensor_burst: z.number().int().min(1).max(10_000_000).optional(),
  /** Readings per second one origin (an MQTT topic branch, a CoAP address, a serial session) may send. 0 = no budget. */
  origin_per_s: z.number().min(0).max(10_000_000).optional(),
  origin_burst: z.number().int().min(1).max(100_000_000).optional(),
  /** Never-seen sensor ids from one origin within 10 s that quarantine the origin; 0 = never. */
  new_ids_per_10s: z.number().int().min(0).max(1_000_000).optional(),
  /** false: watch and flag, never quarantine (an origin the operator vouches for). */
  quarantine: z.boolean().optional(),
});

/**
 * Rate budgets are off unless configured: what a sensor may send depends on the deployment (the
 * firmware bridge carries 5,000 readings/s, the benchmark sends one MQTT sensor as fast as the
 * broker goes), and a wrong default would drop good data. Bursts of new ids are watched always.
 */
export const GUARD_DEFAULTS = {
  sensor_per_s: 0,
  sensor_burst: 2_000,
  origin_per_s: 0,
  origin_burst: 20_000,
  new_ids_per_10s: 200,
  quarantine: true,
} as const;

export const guardSchema = z.strictObject({
  /** Per sensor filter (`pump1/temp`, `boiler/+/temp`): overrides the unit table of agent/guard/physical-ranges.ts; first match wins. */
  ranges: z.record(filter, rangeSchema).refine((r) => Object.keys(r).length <= 1000, 'at most 1000 entries').default({}),
  /** Overrides or extends the unit table itself (SenML unit symbol → range). */
  unit_ranges: z.record(z.string().min(1).max(32), rangeSchema).refine((r) => Object.keys(r).length <= 256, 'at most 256 entries').default({}),
  /** A value unchanged for this many readings in a row and this long is stuck (flag stuck). */
  stuck: z.strictObject({ readings: z.number().int().min(2).max(100_000).default(20), min_s: z.number().min(0).max(30 * 86_400).default(60) }).prefault({}),
  /** |value − rolling median of the last `window`| > factor × median absolute deviation (and > min_delta) is a jump. */
  jump: z
    .strictObject({
      window: z.number().int().min(3).max(255).default(15),
      factor: z.number().min(1).max(1000).default(10),
      min_delta: z.number().min(0).default(0),
    })
    .prefault({}),
  /** A reading time further ahead of the gateway's clock than this is flagged future_time. */
  max_future_s: z.number().min(0).max(365 * 86_400).default(300),
  /** A sensor silent for more than this many of its learned intervals is reported (event sensor.silent); its next reading is flagged gap_before. */
  silence_factor: z.number().min(1.5).max(1000).default(5),
  quarantine: z
    .strictObject({
      /** Readings of a quarantined key kept (stored, delivered, flagged) per second; the excess is dropped and counted. */
      keep_per_s: z.number().min(0).max(100_000).default(20),
      /** At most this many readings kept per quarantine: the quarantined share of the disk (× 256 bytes planning figure, store/budget-shares.ts). */
      keep_max: z.number().int().min(0).max(10_000_000).default(10_000),
      /** Released automatically once the key has behaved for this long. */
      quiet_s: z.number().int().min(1).max(30 * 86_400).default(300),
    })
    .prefault({}),
  /** Defaults for every source, then per source id (`sources.<id>`). */
  defaults: sourcePolicySchema.prefault({}),
  sources: z.record(z.string().regex(/^[a-z][a-z0-9_-]{0,31}$/, 'source ids are lowercase letters, digits, - and _'), sourcePolicySchema).default({}),
  /** Maintenance targets that are assets: asset id → filters of its sensors (inference assets are added from their channels). */
  assets: z.record(z.string().min(1).max(256), z.array(filter).min(1).max(256)).refine((a) => Object.keys(a).length <= 1000, 'at most 1000 assets').default({}),
});

export type GuardConfig = z.infer<typeof guardSchema>;
export type SourcePolicy = Required<z.infer<typeof sourcePolicySchema>>;

/** The policy of one source instance: its own keys over the defaults over GUARD_DEFAULTS. */
export function policyOf(cfg: GuardConfig, source: string): SourcePolicy {
  return { ...GUARD_DEFAULTS, ...stripUndefined(cfg.defaults), ...stripUndefined(cfg.sources[source] ?? {}) };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

import { z } from 'zod';
import { canonicalEncodeAll } from './canonical.js';
import { MAX_OUTPUTS } from './wire-limits.js';
import { bytes32, finite, int, text, uint } from './wire-types.js';

/**
 * Verdicts in a batch body (docs/wire-format.md §4.4): what a model said about a window of
 * readings, bound to the sha256 of the model file through the body's model table `m`.
 */

const OUTPUT_NAME = /^[a-z_][a-z0-9_]{0,22}$/;

/**
 * §4.4 `o`: output name → finite number, at least one. Checked on the object as decoded and kept
 * as it is: z.record rebuilds the object by assignment, which silently drops an output named
 * `__proto__` (a name the pattern allows), and the leaf would no longer match the signed bytes.
 */
const outputsSchema = z.custom<Record<string, number>>((o) => {
  if (typeof o !== 'object' || o === null || Array.isArray(o) || o instanceof Uint8Array) return false;
  const names = Object.keys(o);
  if (names.length === 0 || names.length > MAX_OUTPUTS) return false;
  return names.every((k) => OUTPUT_NAME.test(k) && typeof (o as Record<string, unknown>)[k] === 'number' && Number.isFinite((o as Record<string, number>)[k]));
}, `must map 1-${MAX_OUTPUTS} output names of 1-23 characters [a-z_][a-z0-9_]* to finite numbers`);

export const modelRefSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a model id'),
    h: bytes32,
  })
  .strict();

export const verdictSchema = z
  .object({
    i: uint,
    k: text(1, 256),
    m: uint,
    r: uint.optional(),
    w: int,
    t: int,
    o: outputsSchema,
    s: finite.refine((s) => s >= 0 && s <= 1, 'must be in [0, 1]').optional(),
    v: finite,
    th: finite,
    a: z.boolean(),
    c: z.boolean(),
  })
  .strict()
  .refine((v) => v.w <= v.t, { message: 'window start w must not be after its end t', path: ['w'] });

export type BatchModelRef = z.infer<typeof modelRefSchema>;
export type BatchVerdict = z.infer<typeof verdictSchema>;

/** A verdict as the agent stores it (table `verdicts`). */
export interface StoredVerdict {
  id: number;
  key: string;
  modelId: string;
  modelSha256: Uint8Array;
  windowStart: number;
  ts: number;
  readingId?: number;
  outputs: Record<string, number>;
  score?: number;
  value: number;
  threshold: number;
  alert: boolean;
  changed: boolean;
  /** Verdict flags (docs/wire-format.md §12.3, VERDICT_FLAGS): filled window, unlearned, suppressed. */
  flags?: number;
}

/** What a model said about a window, before the store numbers it (agent/inference). */
export type Verdict = Omit<StoredVerdict, 'id'>;

/** The model table and the wire verdicts of a batch: one model entry per distinct (id, sha256). */
export function toBatchVerdicts(verdicts: readonly StoredVerdict[]): { m: BatchModelRef[]; vd: BatchVerdict[] } {
  const m: BatchModelRef[] = [];
  // A batch names a handful of models: a scan of m beats a hex key per verdict (docs/performance.md).
  const vd = verdicts.map((v) => {
    let mi = m.findIndex((x) => x.id === v.modelId && Buffer.compare(x.h, v.modelSha256) === 0);
    if (mi === -1) {
      mi = m.length;
      m.push({ id: v.modelId, h: v.modelSha256 });
    }
    const out: BatchVerdict = { i: v.id, k: v.key, m: mi, w: v.windowStart, t: v.ts, o: v.outputs, v: v.value, th: v.threshold, a: v.alert, c: v.changed };
    if (v.readingId !== undefined) out.r = v.readingId;
    if (v.score !== undefined) out.s = v.score;
    return out;
  });
  return { m, vd };
}

export function verdictLeaves(verdicts: readonly BatchVerdict[]): Uint8Array[] {
  return canonicalEncodeAll(verdicts);
}

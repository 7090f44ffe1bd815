import { z } from 'zod';
import { canonicalEncode } from './canonical.js';

/**
 * Verdicts in a batch body (docs/wire-format.md §4.4): what a model said about a window of
 * readings, bound to the sha256 of the model file through the body's model table `m`.
 */

const byteString = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a byte string');
const int = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
const uint = int.refine((n) => n >= 0, 'must not be negative');
const finite = z.number().refine(Number.isFinite, 'must be finite');

export const modelRefSchema = z
  .object({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'must be a model id'),
    h: byteString.refine((b) => b.length === 32, 'must be 32 bytes'),
  })
  .strict();

export const verdictSchema = z
  .object({
    i: uint,
    k: z.string().min(1).max(256),
    m: uint,
    r: uint.optional(),
    w: int,
    t: int,
    o: z.record(z.string().regex(/^[a-z_][a-z0-9_]{0,22}$/, 'output names are 1-23 lowercase characters'), finite).refine((o) => Object.keys(o).length > 0, 'needs at least one output'),
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
  /** Verdict flags (docs/wire-format.md §12.3, VERDICT_FLAGS): filled window, learning, suppressed. */
  flags?: number;
}

/** What a model said about a window, before the store numbers it (agent/inference). */
export type Verdict = Omit<StoredVerdict, 'id'>;

/** The model table and the wire verdicts of a batch: one model entry per distinct (id, sha256). */
export function toBatchVerdicts(verdicts: readonly StoredVerdict[]): { m: BatchModelRef[]; vd: BatchVerdict[] } {
  const m: BatchModelRef[] = [];
  const index = new Map<string, number>();
  const vd = verdicts.map((v) => {
    const ref = `${v.modelId}:${Buffer.from(v.modelSha256).toString('hex')}`;
    let mi = index.get(ref);
    if (mi === undefined) {
      mi = m.length;
      index.set(ref, mi);
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
  return verdicts.map((v) => canonicalEncode(v));
}

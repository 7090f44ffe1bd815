import { createHash } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { dirname, isAbsolute, join, normalize, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { AgentError, errorMessage } from '../errors.js';
import { deviceIdFromPublicKey } from '../identity/device-id.js';
import { verifySignature } from '../identity/keys.js';
import { CONTEXT_LIMITS } from './context-novelty.js';

/** Format of models/manifest.json, specified in agent/inference/README.md. */
export const MANIFEST_FORMAT = 'edge-agent/models/1';
export const MANIFEST_FILE = 'manifest.json';
/** Detached Ed25519 signature of manifest.json's exact bytes by the model publisher (64 bytes, base64). */
export const MANIFEST_SIGNATURE_FILE = 'manifest.json.sig';
/** manifest.json is a few KiB; anything past this is refused before it is parsed. */
const MAX_MANIFEST_BYTES = 1024 * 1024;

/** The models shipped with the package (`models/` at the package root). */
export const SHIPPED_MODELS_DIR = resolve(dirname(fileURLToPath(import.meta.url)), '../../../models');

const finite = z.number().refine(Number.isFinite, 'must be a finite number');
const positive = finite.refine((n) => n > 0, 'must be > 0');
// Numenta's anomaly likelihood stage (onset-score.ts, README §5b), for the tail and the context score.
const likelihood = z.strictObject({
  halflife: z.number().min(1).max(1e6),
  short: z.number().min(1).max(1e4),
  weight: finite.refine((n) => n >= 0 && n <= 1, 'must be in [0, 1]'),
});

const normalisationSchema = z.discriminatedUnion('type', [
  z.strictObject({ type: z.literal('fixed'), mean: z.array(finite).min(1), std: z.array(positive).min(1) }),
  z.strictObject({
    type: z.literal('warmup'),
    warmup: z.number().int().min(2),
    min_std: positive,
    /** Per feature, half-life in rows of a baseline that follows slow drift after warm-up; 0 = frozen (baseline.ts). */
    follow: z.array(finite.refine((h) => h >= 0, 'must be >= 0 (0 = frozen)')).optional(),
    /** The baseline moves by at most follow_clip standard deviations x its rate per row (default: clip). */
    follow_clip: positive.optional(),
    /** Rate multiplier while the key is in alert: 0 freezes the baseline during an alert, so a fault is not learnt as normal. */
    follow_in_alert: finite.refine((m) => m >= 0 && m <= 1, 'must be in [0, 1]').optional(),
    /** After this many verdicts in alert, the key's baseline moves to the level of its last window (a new normal). */
    relearn_after: z.number().int().min(1).optional(),
    /** Half-life in rows of a standard deviation that follows the key's noise level while it is not in alert (baseline.ts followSpread). */
    follow_std: positive.optional(),
    /** Each row's squared deviation counts for at most follow_std_clip² variances in that update (default 3). */
    follow_std_clip: positive.optional(),
  }),
  // Statistics that keep learning for the series' life (online-baseline.ts, README §1b).
  z.strictObject({
    type: z.literal('online'),
    warmup: z.number().int().min(1),
    halflife: positive,
    robust_clip: positive,
    min_std: positive,
    daily_bins: z.number().int().min(0).max(96),
    bin_halflife: positive,
    bin_min: z.number().int().min(1),
    seasonal_ratio: finite.refine((n) => n >= 0, 'must be >= 0'),
  }),
]);

const scoreSchema = z.strictObject({
  output: z.string().min(1),
  ewma_halflife: finite.refine((n) => n >= 0, 'must be >= 0').default(0),
  calibration: z.discriminatedUnion('type', [
    z.strictObject({
      type: z.literal('warmup-quantile'),
      quantile: finite.refine((q) => q > 0 && q < 1, 'must be in (0, 1)'),
      factor: positive,
    }),
    // onset-score.ts, README §5b: a tail probability against the series' own running distribution.
    z.strictObject({
      type: z.literal('onset-tail'),
      decades: positive,
      peak_window: z.number().int().min(1).max(10_000),
      range_margin: finite.refine((n) => n >= 0, 'must be >= 0'),
      range_after: z.number().int().min(0).default(0),
      range_score: finite.refine((n) => n >= 0 && n <= 1, 'must be in [0, 1]'),
      stuck_min_run: z.number().int().min(0),
      stuck_factor: finite.refine((n) => n >= 0, 'must be >= 0'),
      stuck_score: finite.refine((n) => n >= 0 && n <= 1, 'must be in [0, 1]'),
      // Optional stages (agent/inference/README.md §5b, §6b); absent = off.
      likelihood: likelihood.optional(),
      // context-novelty.ts, README §5c: how much of the present short sequence was never seen.
      context: z
        .strictObject({
          buckets: z.number().int().min(2).max(CONTEXT_LIMITS.buckets),
          order: z.number().int().min(1).max(CONTEXT_LIMITS.order),
          table: z.number().int().min(16).max(CONTEXT_LIMITS.table),
          memory: z.number().int().min(1).max(1e7),
          min_count: z.number().int().min(1).max(1e6),
          range_halflife: z.number().min(1).max(1e7),
          min_moves: z.number().int().min(0).max(1e7),
          likelihood: likelihood,
          scale: finite.refine((n) => n >= 0 && n <= 1, 'must be in [0, 1]'),
          after: z.number().int().min(0).max(1e7),
        })
        .optional(),
      hold: z
        .strictObject({
          departure_halflife: z.number().min(1).max(1e4),
          min_rows: z.number().int().min(0).max(1e6),
          max_rows: z.number().int().min(1).max(1e7),
          shift: z
            .strictObject({
              z: finite.refine((n) => n > 0, 'must be > 0'),
              rows: z.number().int().min(1).max(1e6),
              low: finite.refine((n) => n >= 0, 'must be >= 0'),
              within: z.number().int().min(1).max(1e7),
              range_halflife: z.number().min(1).max(1e7).optional(),
              range_margin: finite.refine((n) => n >= 0, 'must be >= 0').optional(),
              after: z.number().int().min(0).max(1e7).optional(),
            })
            .optional(),
        })
        .optional(),
    }),
  ]),
});

const alertSchema = z.strictObject({
  output: z.string().min(1),
  direction: z.enum(['above', 'below']),
  on: finite,
  off: finite,
  on_count: z.number().int().min(1),
  off_count: z.number().int().min(1),
  clear_output: z.string().min(1).optional(),
});

const modelEntrySchema = z
  .strictObject({
    id: z.string().regex(/^[a-z0-9][a-z0-9-]{0,63}$/, 'lowercase letters, digits and -, at most 64'),
    version: z.string().min(1),
    task: z.enum(['anomaly', 'rul']),
    description: z.string().min(1),
    file: z
      .string()
      .min(1)
      .refine((f) => !isAbsolute(f) && !normalize(f).split(sep).includes('..'), 'must be a path inside the models directory'),
    sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lowercase hex digits'),
    input: z.strictObject({
      name: z.string().min(1),
      window: z.number().int().min(1).max(4096),
      features: z.array(z.string().min(1)).min(1).max(256),
      pad: z.enum(['none', 'edge']),
    }),
    normalisation: normalisationSchema,
    clip: positive,
    outputs: z.array(z.strictObject({ name: z.string().min(1), meaning: z.string().min(1), unit: z.string().optional() })).min(1),
    score: scoreSchema.optional(),
    alert: alertSchema,
    training: z.record(z.string(), z.unknown()).default({}),
    metrics: z.record(z.string(), z.unknown()).default({}),
  })
  .superRefine((m, ctx) => {
    const issue = (path: (string | number)[], message: string) => ctx.addIssue({ code: 'custom', path, message });
    const outputs = new Set(m.outputs.map((o) => o.name));
    if (outputs.size !== m.outputs.length) issue(['outputs'], 'output names must be unique');
    if (new Set(m.input.features).size !== m.input.features.length) issue(['input', 'features'], 'feature names must be unique');
    if (m.normalisation.type === 'fixed') {
      const f = m.input.features.length;
      if (m.normalisation.mean.length !== f) issue(['normalisation', 'mean'], `needs ${f} values, one per feature`);
      if (m.normalisation.std.length !== f) issue(['normalisation', 'std'], `needs ${f} values, one per feature`);
    } else {
      if (m.normalisation.warmup < m.input.window) issue(['normalisation', 'warmup'], `must be at least the window (${m.input.window}) so calibration has a full window`);
      if (m.normalisation.type === 'warmup') {
        const follow = m.normalisation.follow;
        if (follow && follow.length !== m.input.features.length) issue(['normalisation', 'follow'], `needs ${m.input.features.length} half-lives, one per feature`);
        if (m.normalisation.follow_clip !== undefined && !follow) issue(['normalisation', 'follow_clip'], 'applies only with "follow"');
        if (m.normalisation.follow_in_alert !== undefined && !follow) issue(['normalisation', 'follow_in_alert'], 'applies only with "follow"');
        if (m.normalisation.follow_std_clip !== undefined && m.normalisation.follow_std === undefined) issue(['normalisation', 'follow_std_clip'], 'applies only with "follow_std"');
      }
    }
    if (m.normalisation.type === 'online' && m.input.features.length !== 1) issue(['normalisation', 'type'], '"online" is implemented for single-channel models only');
    if (m.task === 'anomaly') {
      if (!m.score) issue(['score'], 'anomaly models need a score section');
      else if (!outputs.has(m.score.output)) issue(['score', 'output'], `"${m.score.output}" is not one of the outputs`);
      if (m.score?.calibration.type === 'warmup-quantile' && m.normalisation.type !== 'warmup') issue(['normalisation', 'type'], 'calibration "warmup-quantile" is made during warm-up: use normalisation "warmup"');
      if (m.score?.calibration.type === 'onset-tail' && m.normalisation.type !== 'online') issue(['normalisation', 'type'], 'calibration "onset-tail" needs normalisation "online"');
    }
    const onsetTail = m.score?.calibration.type === 'onset-tail';
    const hold = m.score?.calibration.type === 'onset-tail' && m.score.calibration.hold !== undefined;
    const alertables = new Set([...outputs, ...(m.score ? ['score'] : []), ...(onsetTail ? ['surprise'] : []), ...(hold ? ['departure'] : [])]);
    if (!alertables.has(m.alert.output)) issue(['alert', 'output'], `"${m.alert.output}" is neither "score"${onsetTail ? ', "surprise"' : ''} nor an output`);
    if (m.alert.clear_output !== undefined && !alertables.has(m.alert.clear_output)) issue(['alert', 'clear_output'], `"${m.alert.clear_output}" is neither "score"${onsetTail ? ', "surprise"' : ''} nor an output`);
    if (m.alert.direction === 'above' && m.alert.off > m.alert.on) issue(['alert', 'off'], 'must be <= on for direction "above"');
    if (m.alert.direction === 'below' && m.alert.off < m.alert.on) issue(['alert', 'off'], 'must be >= on for direction "below"');
  });

const manifestSchema = z.strictObject({
  format: z.literal(MANIFEST_FORMAT),
  models: z.array(modelEntrySchema),
});

export type ModelEntry = z.infer<typeof modelEntrySchema>;
export type Manifest = z.infer<typeof manifestSchema> & { dir: string };

/**
 * Checks the publisher's detached signature over the manifest's exact bytes. Since the manifest
 * pins every model file by sha256, a verified manifest vouches for every model it lists.
 */
function checkManifestSignature(dir: string, bytes: Buffer, publisherKey: Uint8Array): void {
  const path = join(dir, MANIFEST_SIGNATURE_FILE);
  const who = deviceIdFromPublicKey(publisherKey);
  let sig: Buffer;
  try {
    sig = Buffer.from(readFileSync(path, 'utf8').trim(), 'base64');
  } catch (err) {
    throw new AgentError('MODEL_TAMPERED', `a model publisher key (${who}) is configured, but ${path} cannot be read: ${errorMessage(err)}; refusing the models`);
  }
  if (sig.length !== 64 || !verifySignature(publisherKey, bytes, sig)) {
    throw new AgentError('MODEL_TAMPERED', `${join(dir, MANIFEST_FILE)}: its signature (${path}) does not verify with the model publisher key ${who}; refusing the models`);
  }
}

/**
 * Reads and validates `manifest.json`; every problem is reported at once with its JSON path.
 * With `publisherKey`, the manifest must carry a valid signature by it (manifest.json.sig).
 */
export function loadManifest(dir: string, opts: { publisherKey?: Uint8Array } = {}): Manifest {
  const path = join(dir, MANIFEST_FILE);
  let raw: unknown;
  try {
    // A manifest lists a few models; one far larger is not one (and JSON.parse has no limits).
    if (statSync(path).size > MAX_MANIFEST_BYTES) throw new AgentError('MODEL_INVALID', `${path}: larger than ${MAX_MANIFEST_BYTES} bytes; not a model manifest`);
    const bytes = readFileSync(path);
    if (opts.publisherKey) checkManifestSignature(dir, bytes, opts.publisherKey);
    raw = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    if (err instanceof AgentError) throw err;
    const code = (err as NodeJS.ErrnoException).code === 'ENOENT' ? 'MODEL_NOT_FOUND' : 'MODEL_INVALID';
    throw new AgentError(code, `${path}: ${errorMessage(err)}`);
  }
  const parsed = manifestSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `  ${describePath(raw, i.path)}: ${i.message}`);
    throw new AgentError('MODEL_INVALID', `${path}: invalid manifest:\n${problems.join('\n')}`);
  }
  const ids = new Set<string>();
  for (const m of parsed.data.models) {
    if (ids.has(m.id)) throw new AgentError('MODEL_INVALID', `${path}: model id "${m.id}" appears twice`);
    ids.add(m.id);
  }
  return { ...parsed.data, dir };
}

/** models[2].input.window reads better as models[2] (cmapss-rul).input.window. */
function describePath(raw: unknown, path: readonly PropertyKey[]): string {
  let out = '';
  let node: unknown = raw;
  for (const key of path) {
    out += typeof key === 'number' ? `[${key}]` : `${out ? '.' : ''}${String(key)}`;
    node = node !== null && typeof node === 'object' ? (node as Record<PropertyKey, unknown>)[key] : undefined;
    if (typeof key === 'number' && node !== null && typeof node === 'object' && typeof (node as { id?: unknown }).id === 'string') {
      out += ` (${(node as { id: string }).id})`;
    }
  }
  return out || '(root)';
}

export function findModel(manifest: Manifest, id: string): ModelEntry {
  const m = manifest.models.find((x) => x.id === id);
  if (!m) {
    const known = manifest.models.map((x) => x.id).join(', ') || 'none';
    throw new AgentError('MODEL_NOT_FOUND', `no model "${id}" in ${join(manifest.dir, MANIFEST_FILE)} (it has: ${known})`);
  }
  return m;
}

/**
 * Reads a model file and checks it against the manifest's sha256. The bytes returned are the
 * ones that were hashed, so what runs is exactly what was verified.
 */
export function readVerifiedModel(manifest: Manifest, entry: ModelEntry): Uint8Array {
  const path = join(manifest.dir, entry.file);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (err) {
    throw new AgentError('MODEL_NOT_FOUND', `model ${entry.id}: cannot read ${path}: ${errorMessage(err)}`);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== entry.sha256) {
    throw new AgentError(
      'MODEL_TAMPERED',
      `model ${entry.id}: ${path} has sha256 ${actual}, but the manifest says ${entry.sha256}; refusing to load it (reinstall the models, or retrain with npm run train)`,
    );
  }
  return bytes;
}

export interface ModelCheck {
  id: string;
  file: string;
  ok: boolean;
  error?: string;
}

/** Checks every model of a manifest against its sha256 without loading it (doctor, `models verify`). */
export function verifyModels(dir: string, opts: { publisherKey?: Uint8Array } = {}): ModelCheck[] {
  const manifest = loadManifest(dir, opts);
  return manifest.models.map((m) => {
    try {
      readVerifiedModel(manifest, m);
      return { id: m.id, file: join(dir, m.file), ok: true };
    } catch (err) {
      return { id: m.id, file: join(dir, m.file), ok: false, error: errorMessage(err) };
    }
  });
}

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { StoredReading, TimeSource } from '../types.js';
import { canonicalDecode, canonicalEncode } from './canonical.js';
import { merkleRoot, sha256 } from './merkle.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { modelRefSchema, toBatchVerdicts, verdictLeaves, verdictSchema, type StoredVerdict } from './verdict-format.js';

/** The wire format of a signed batch, specified in docs/wire-format.md (section numbers cited below). */
export const BATCH_FORMAT = 'edge-agent/batch/1';
/** Version 2 adds verdicts (§4.4); a batch without them is still written as version 1 (§11). */
export const BATCH_FORMAT_V2 = 'edge-agent/batch/2';
export const ZERO_HASH = new Uint8Array(32);

const TIME_SOURCE_CODE: Record<TimeSource, 0 | 1 | 2> = { sensor: 0, 'gateway-synced': 1, 'gateway-unsynced': 2 };
const TIME_SOURCE_OF_CODE: readonly TimeSource[] = ['sensor', 'gateway-synced', 'gateway-unsynced'];

const byteString = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a byte string');
const bytes32 = byteString.refine((b) => b.length === 32, 'must be 32 bytes');
const int = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
const uint = int.refine((n) => n >= 0, 'must not be negative');

// wire-format.md §3: one reading.
export const readingSchema = z
  .object({
    i: uint,
    b: uint,
    s: z.string().min(1).max(256),
    t: int,
    q: z.union([z.literal(0), z.literal(1), z.literal(2)]),
    v: z.number().refine(Number.isFinite, 'must be finite'),
    u: z.string().min(1).max(32).optional(),
    n: uint.optional(),
    src: z.string().min(1).max(64),
  })
  .strict();

// wire-format.md §4: readings the gateway dropped under its disk budget since the previous batch, per sensor.
const dropSchema = z.object({ s: z.string().min(1).max(256), n: uint.refine((n) => n >= 1, 'must be at least 1') }).strict();
export const dropsSchema = z
  .array(dropSchema)
  .min(1)
  .max(100_000)
  .refine((d) => new Set(d.map((x) => x.s)).size === d.length, 'names a sensor twice');

// wire-format.md §4: the batch body, the signed bytes.
const bodySchema = z
  .object({
    fmt: z.union([z.literal(BATCH_FORMAT), z.literal(BATCH_FORMAT_V2)]),
    dev: bytes32,
    seq: uint.refine((n) => n >= 1, 'starts at 1'),
    prev: bytes32,
    boot: uint,
    sync: z.boolean(),
    created: int,
    t0: int,
    t1: int,
    n: uint,
    root: bytes32,
    r: z.array(readingSchema),
    // §4.4: verdicts, their models and their Merkle root; absent together when there are none.
    m: z.array(modelRefSchema).min(1).optional(),
    vd: z.array(verdictSchema).min(1).optional(),
    vroot: bytes32.optional(),
    drops: dropsSchema.optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    const issue = (path: string, message: string) => ctx.addIssue({ code: 'custom', path: [path], message });
    const present = [b.m, b.vd, b.vroot].filter((x) => x !== undefined).length;
    if (present !== 0 && present !== 3) issue('vd', 'm, vd and vroot are present together or not at all');
    if (b.fmt === BATCH_FORMAT && present !== 0) issue('vd', `verdicts need fmt ${BATCH_FORMAT_V2}`);
    if (b.fmt === BATCH_FORMAT && b.drops !== undefined) issue('drops', `drops need fmt ${BATCH_FORMAT_V2}`);
    if (b.r.length === 0 && !b.vd) issue('r', 'a batch holds at least one reading or one verdict');
    if (b.m && new Set(b.m.map((x) => `${x.id}:${Buffer.from(x.h).toString('hex')}`)).size !== b.m.length) issue('m', 'a model appears twice');
    b.vd?.forEach((v, k) => {
      if (v.m >= (b.m?.length ?? 0)) ctx.addIssue({ code: 'custom', path: ['vd', k, 'm'], message: 'names no entry of m' });
    });
  });

// wire-format.md §5: the envelope.
const envelopeSchema = z.object({ body: byteString, sig: byteString.refine((b) => b.length === 64, 'must be 64 bytes') }).strict();

export type BatchReading = z.infer<typeof readingSchema>;
export type BatchBody = z.infer<typeof bodySchema>;
export type BatchDrop = z.infer<typeof dropSchema>;

export interface SignedBatch {
  body: BatchBody;
  /** Canonical CBOR of the body: what is signed and hashed. */
  bodyBytes: Uint8Array;
  signature: Uint8Array;
  /** sha256 of bodyBytes; the next batch's `prev`. */
  hash: Uint8Array;
  /** Canonical CBOR of {body, sig}: what goes on the wire and into batch files. */
  envelope: Uint8Array;
}

export interface BatchHeader {
  seq: number;
  prevHash: Uint8Array;
  bootCounter: number;
  clockSynced: boolean;
  createdMs: number;
  /** Readings dropped under the disk budget since the previous batch; omitted when none. */
  drops?: readonly BatchDrop[];
}

export function toBatchReading(r: StoredReading): BatchReading {
  const out: BatchReading = { i: r.id, b: r.boot, s: r.sensor, t: r.ts, q: TIME_SOURCE_CODE[r.timeSource], v: r.value, src: r.source };
  if (r.unit !== undefined) out.u = r.unit;
  if (r.seq !== undefined) out.n = r.seq;
  return out;
}

export function fromBatchReading(r: BatchReading): StoredReading {
  const out: StoredReading = { id: r.i, boot: r.b, sensor: r.s, ts: r.t, timeSource: TIME_SOURCE_OF_CODE[r.q]!, value: r.v, source: r.src };
  if (r.u !== undefined) out.unit = r.u;
  if (r.n !== undefined) out.seq = r.n;
  return out;
}

export function readingLeaves(readings: readonly BatchReading[]): Uint8Array[] {
  return readings.map((r) => canonicalEncode(r));
}

/** Smallest and largest time over readings and verdict window ends (§4.1 t0/t1). */
export function timeRange(body: Pick<BatchBody, 'r' | 'vd'>): { t0: number; t1: number } {
  let t0 = Infinity;
  let t1 = -Infinity;
  for (const x of body.r) {
    if (x.t < t0) t0 = x.t;
    if (x.t > t1) t1 = x.t;
  }
  for (const x of body.vd ?? []) {
    if (x.t < t0) t0 = x.t;
    if (x.t > t1) t1 = x.t;
  }
  return { t0, t1 };
}

export function buildBatch(identity: Identity, header: BatchHeader, readings: readonly StoredReading[], verdicts: readonly StoredVerdict[] = []): SignedBatch {
  if (readings.length === 0 && verdicts.length === 0) throw new Error('a batch holds at least one reading or verdict');
  const r = readings.map(toBatchReading);
  const leaves = readingLeaves(r);
  const v = verdicts.length > 0 ? toBatchVerdicts(verdicts) : undefined;
  const { t0, t1 } = timeRange({ r, ...(v ? { vd: v.vd } : {}) });
  const body: BatchBody = {
    fmt: v || (header.drops?.length ?? 0) > 0 ? BATCH_FORMAT_V2 : BATCH_FORMAT,
    dev: identity.publicKey,
    seq: header.seq,
    prev: header.prevHash,
    boot: header.bootCounter,
    sync: header.clockSynced,
    created: header.createdMs,
    t0,
    t1,
    n: r.length,
    root: merkleRoot(leaves),
    r,
  };
  if (v) {
    body.m = v.m;
    body.vd = v.vd;
    body.vroot = merkleRoot(verdictLeaves(v.vd));
  }
  // Sorted by sensor, so the same drops always encode to the same bytes.
  if (header.drops && header.drops.length > 0) body.drops = [...header.drops].sort((a, b) => (a.s < b.s ? -1 : a.s > b.s ? 1 : 0)).map((d) => ({ s: d.s, n: d.n }));
  const bodyBytes = encodeBodyWithLeaves(body, leaves);
  const signature = identity.sign(bodyBytes);
  return { body, bodyBytes, signature, hash: sha256(bodyBytes), envelope: canonicalEncode({ body: bodyBytes, sig: signature }) };
}

const READINGS_KEY = Uint8Array.of(0x61, 0x72); // text(1) "r"

/**
 * canonicalEncode(body), reusing the readings' encodings already made for the Merkle leaves
 * (§3: in the body, `r` is the array header followed by the leaves back to back). The body is
 * encoded with a random 32-byte placeholder for `r`, and the placeholder is replaced by the
 * array: map key order depends on keys only, so the bytes are exactly canonicalEncode(body).
 * Saves encoding every reading twice, the largest cost of cutting a batch.
 */
function encodeBodyWithLeaves(body: BatchBody, leaves: readonly Uint8Array[]): Uint8Array {
  const placeholder = randomBytes(32);
  const skeleton = canonicalEncode({ ...body, r: placeholder });
  const marker = Buffer.concat([READINGS_KEY, Uint8Array.of(0x58, 0x20), placeholder]);
  const at = Buffer.from(skeleton.buffer, skeleton.byteOffset, skeleton.byteLength).indexOf(marker);
  if (at < 0) return canonicalEncode(body);
  const header = canonicalEncode(new Array(leaves.length).fill(null)).subarray(0, arrayHeaderLength(leaves.length));
  return Buffer.concat([skeleton.subarray(0, at + READINGS_KEY.length), header, ...leaves, skeleton.subarray(at + marker.length)]);
}

/** Bytes of a CBOR array header for n items (RFC 8949 §3.1: argument in 0, 1, 2, 4 or 8 extra bytes). */
function arrayHeaderLength(n: number): number {
  return n < 24 ? 1 : n < 0x100 ? 2 : n < 0x10000 ? 3 : n < 0x100000000 ? 5 : 9;
}

export type BatchRejectReason =
  | 'malformed'
  | 'bad-signature'
  | 'bad-merkle-root'
  | 'bad-count'
  | 'bad-time-range'
  | 'duplicate-reading-id'
  | 'duplicate-verdict-id'
  // version 3 (§12.9)
  | 'bad-data-hash'
  | 'undecryptable'
  | 'bad-attestation';

export class BatchVerificationError extends Error {
  constructor(
    readonly reason: BatchRejectReason,
    message: string,
  ) {
    super(message);
    this.name = 'BatchVerificationError';
  }
}

function describeZodError(what: string, err: z.ZodError): string {
  const first = err.issues[0]!;
  return `${what}: field ${first.path.join('.') || '(root)'} ${first.message}`;
}

/**
 * Everything a third party checks on one batch alone (wire-format.md §6): canonical
 * encoding, schema, signature by the device key it names, reading count, time range and
 * Merkle root. Chain checks need the neighbouring batches and are the caller's.
 */
export function verifyBatchEnvelope(envelope: Uint8Array): SignedBatch {
  let env: z.infer<typeof envelopeSchema>;
  let body: BatchBody;
  try {
    const parsedEnv = envelopeSchema.safeParse(canonicalDecode(envelope, 'envelope'));
    if (!parsedEnv.success) throw new Error(describeZodError('envelope', parsedEnv.error));
    env = parsedEnv.data;
    const parsedBody = bodySchema.safeParse(canonicalDecode(env.body, 'body'));
    if (!parsedBody.success) throw new Error(describeZodError('body', parsedBody.error));
    body = parsedBody.data;
  } catch (err) {
    throw new BatchVerificationError('malformed', (err as Error).message);
  }
  if (!verifySignature(body.dev, env.body, env.sig)) {
    throw new BatchVerificationError('bad-signature', `signature does not verify with the device key of batch ${body.seq}`);
  }
  if (body.n !== body.r.length) throw new BatchVerificationError('bad-count', `n is ${body.n} but the batch holds ${body.r.length} readings`);
  const ids = new Set<number>();
  for (const x of body.r) {
    if (ids.has(x.i)) throw new BatchVerificationError('duplicate-reading-id', `reading id ${x.i} appears twice`);
    ids.add(x.i);
  }
  const verdictIds = new Set<number>();
  for (const x of body.vd ?? []) {
    if (verdictIds.has(x.i)) throw new BatchVerificationError('duplicate-verdict-id', `verdict id ${x.i} appears twice`);
    verdictIds.add(x.i);
  }
  const { t0, t1 } = timeRange(body);
  if (t0 !== body.t0 || t1 !== body.t1) {
    throw new BatchVerificationError('bad-time-range', `t0/t1 are ${body.t0}/${body.t1} but the readings and verdicts span ${t0}/${t1}`);
  }
  const root = merkleRoot(readingLeaves(body.r));
  if (!Buffer.from(root).equals(Buffer.from(body.root))) {
    throw new BatchVerificationError('bad-merkle-root', 'Merkle root does not match the readings');
  }
  if (body.vd && !Buffer.from(merkleRoot(verdictLeaves(body.vd))).equals(Buffer.from(body.vroot!))) {
    throw new BatchVerificationError('bad-merkle-root', 'verdict Merkle root vroot does not match the verdicts');
  }
  return { body, bodyBytes: env.body, signature: env.sig, hash: sha256(env.body), envelope };
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

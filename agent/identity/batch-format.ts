import { z } from 'zod';
import type { StoredReading, TimeSource } from '../types.js';
import { CborLimitError, decodeBounded } from './bounded-cbor.js';
import { canonicalEncode, canonicalEncodeAll, canonicalEncodeWithArray } from './canonical.js';
import { weakPointReason } from './ed25519-points.js';
import { merkleRoot, merkleRootOfLeafHashes, sha256 } from './merkle.js';
import { defineLazyReadings, type ReadingLeaves } from './reading-leaf.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { deviceIdFromPublicKey } from './device-id.js';
import { modelRefSchema, toBatchVerdicts, verdictLeaves, verdictSchema, type StoredVerdict } from './verdict-format.js';
import { BODY_LIMITS, ENVELOPE_LIMITS, MAX_DROPS, MAX_MODELS, MAX_READINGS, MAX_VERDICTS } from './wire-limits.js';
import { byteString, bytes32, bytesOf, int, text, uint } from './wire-types.js';

/** The wire format of a signed batch, specified in docs/wire-format.md (section numbers cited below). */
export const BATCH_FORMAT = 'edge-agent/batch/1';
/** Version 2 adds verdicts (§4.4); a batch without them is still written as version 1 (§11). */
export const BATCH_FORMAT_V2 = 'edge-agent/batch/2';
export const ZERO_HASH = new Uint8Array(32);

const TIME_SOURCE_CODE: Record<TimeSource, 0 | 1 | 2> = { sensor: 0, 'gateway-synced': 1, 'gateway-unsynced': 2 };
const TIME_SOURCE_OF_CODE: readonly TimeSource[] = ['sensor', 'gateway-synced', 'gateway-unsynced'];

// wire-format.md §3: one reading.
export const readingSchema = z
  .object({
    i: uint,
    b: uint,
    s: text(1, 256),
    t: int,
    q: z.union([z.literal(0), z.literal(1), z.literal(2)]),
    v: z.number().refine(Number.isFinite, 'must be finite'),
    u: text(1, 32).optional(),
    n: uint.optional(),
    src: text(1, 64),
  })
  .strict();

// wire-format.md §4: readings the gateway dropped under its disk budget since the previous batch, per sensor.
const dropSchema = z.object({ s: text(1, 256), n: uint.refine((n) => n >= 1, 'must be at least 1') }).strict();
export const dropsSchema = z
  .array(dropSchema)
  .min(1)
  .max(MAX_DROPS)
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
    r: z.array(readingSchema).max(MAX_READINGS),
    // §4.4: verdicts, their models and their Merkle root; absent together when there are none.
    m: z.array(modelRefSchema).min(1).max(MAX_MODELS).optional(),
    vd: z.array(verdictSchema).min(1).max(MAX_VERDICTS).optional(),
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
    // §11: a body without verdicts and drops is version 1; its version-2 twin would give the same content a second hash.
    if (b.fmt === BATCH_FORMAT_V2 && present === 0 && b.drops === undefined) issue('fmt', `a body without verdicts or drops is ${BATCH_FORMAT}`);
    if (b.m && new Set(b.m.map((x) => `${x.id}:${Buffer.from(x.h).toString('hex')}`)).size !== b.m.length) issue('m', 'a model appears twice');
    b.vd?.forEach((v, k) => {
      if (v.m >= (b.m?.length ?? 0)) ctx.addIssue({ code: 'custom', path: ['vd', k, 'm'], message: 'names no entry of m' });
    });
  });

// wire-format.md §5: the envelope.
const envelopeSchema = z.object({ body: byteString, sig: bytesOf(64) }).strict();

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
  return canonicalEncodeAll(readings);
}

/** Smallest and largest time over readings and verdict window ends (§4.1 t0/t1). */
export function timeRange(body: Pick<BatchBody, 'r' | 'vd'>): { t0: number; t1: number } {
  return spanOfTimes([body.r, body.vd ?? []]);
}

/**
 * Smallest and largest `t` over several lists, widening `from` (a span already known, e.g. of
 * readings given as leaves); Infinity / -Infinity when all are empty.
 */
export function spanOfTimes(lists: readonly (readonly { t: number }[])[], from: { t0: number; t1: number } = { t0: Infinity, t1: -Infinity }): { t0: number; t1: number } {
  let { t0, t1 } = from;
  for (const list of lists) {
    for (const x of list) {
      if (x.t < t0) t0 = x.t;
      if (x.t > t1) t1 = x.t;
    }
  }
  return { t0, t1 };
}

export function buildBatch(identity: Identity, header: BatchHeader, readings: readonly StoredReading[], verdicts: readonly StoredVerdict[] = []): SignedBatch {
  if (readings.length === 0 && verdicts.length === 0) throw new Error('a batch holds at least one reading or verdict');
  const r = readings.map(toBatchReading);
  const leaves = readingLeaves(r);
  const { t0, t1 } = spanOfTimes([r]);
  const batch = assembleBatch(identity, header, { count: r.length, parts: leaves, root: merkleRoot(leaves), t0, t1 }, verdicts);
  batch.body.r = r;
  return batch;
}

/**
 * buildBatch for readings given as their leaves, encoded when they were committed
 * (pipeline/leaf-cache.ts): the same bytes, with the readings' part of the body concatenated and
 * their Merkle root computed over the stored leaf hashes. `body.r` is decoded only when read.
 */
export function buildBatchFromLeaves(identity: Identity, header: BatchHeader, readings: ReadingLeaves, verdicts: readonly StoredVerdict[] = []): SignedBatch {
  if (readings.count === 0 && verdicts.length === 0) throw new Error('a batch holds at least one reading or verdict');
  if (readings.flagged) throw new Error('flagged readings need version 3 (wire-format.md §12.3)');
  const root = merkleRootOfLeafHashes(readings.leafHashes, readings.count);
  const batch = assembleBatch(identity, header, { count: readings.count, parts: readings.parts, root, t0: readings.t0, t1: readings.t1 }, verdicts);
  defineLazyReadings(batch.body, 'r', readings);
  return batch;
}

/** A batch's readings as assembleBatch (and batch-v3.ts assembleV3) need them: their encodings, Merkle root and time span. */
export interface EncodedReadings {
  count: number;
  parts: readonly Uint8Array[];
  root: Uint8Array;
  t0: number;
  t1: number;
}

/** Everything of buildBatch but the readings' objects: `body.r` is the caller's to set. */
function assembleBatch(identity: Identity, header: BatchHeader, readings: EncodedReadings, verdicts: readonly StoredVerdict[]): SignedBatch {
  const v = verdicts.length > 0 ? toBatchVerdicts(verdicts) : undefined;
  // §4.1: t0/t1 over readings and verdicts alike.
  const { t0, t1 } = spanOfTimes([v?.vd ?? []], readings);
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
    n: readings.count,
    root: readings.root,
    r: [], // the caller's to set (kept here for the key order of the object: vector files print it)
  };
  if (v) {
    body.m = v.m;
    body.vd = v.vd;
    body.vroot = merkleRoot(verdictLeaves(v.vd));
  }
  // Sorted by sensor, so the same drops always encode to the same bytes.
  // §4.5: bytewise by UTF-8, which JavaScript's `<` (UTF-16 code units) is not beyond U+FFFF.
  if (header.drops && header.drops.length > 0) body.drops = [...header.drops].sort((a, b) => Buffer.compare(Buffer.from(a.s), Buffer.from(b.s))).map((d) => ({ s: d.s, n: d.n }));
  // §3: in the body, `r` is the array header followed by the leaves back to back, so the readings
  // encoded once for the Merkle tree are not encoded again (the largest cost of cutting a batch).
  const bodyBytes = canonicalEncodeWithArray(body, 'r', readings.count, readings.parts);
  const signature = identity.sign(bodyBytes);
  return { body, bodyBytes, signature, hash: sha256(bodyBytes), envelope: canonicalEncode({ body: bodyBytes, sig: signature }) };
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
  | 'bad-attestation'
  /** §12.9 step 11: the receiver holds a sensor key registry that does not name the attestation's key. */
  | 'unknown-sensor-key';

/** What an unverified batch claims (its `dev` and `seq`), for log lines only: never trusted for anything else. */
export interface ClaimedBatch {
  claimed_device?: string;
  claimed_seq?: number;
}

export class BatchVerificationError extends Error {
  constructor(
    readonly reason: BatchRejectReason,
    message: string,
    readonly claimed: ClaimedBatch = {},
  ) {
    super(message);
    this.name = 'BatchVerificationError';
  }
}

function describeZodError(what: string, err: z.ZodError): string {
  const first = err.issues[0]!;
  return `${what}: field ${first.path.join('.') || '(root)'} ${first.message}`;
}

function decodeOrMalformed(bytes: Uint8Array, what: string, limits: typeof BODY_LIMITS, claimed: ClaimedBatch = {}) {
  try {
    return decodeBounded(bytes, limits);
  } catch (err) {
    if (!(err instanceof CborLimitError)) throw err;
    throw new BatchVerificationError('malformed', `${what}: ${err.message} (byte ${err.offset})`, claimed);
  }
}

function claimedOf(body: Record<string, unknown>): ClaimedBatch {
  const out: ClaimedBatch = {};
  if (body.dev instanceof Uint8Array && body.dev.length === 32) out.claimed_device = deviceIdFromPublicKey(body.dev);
  if (typeof body.seq === 'number') out.claimed_seq = body.seq;
  return out;
}

const sameBytes = (a: Uint8Array, b: Uint8Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength).equals(Buffer.from(b.buffer, b.byteOffset, b.byteLength));

/**
 * Everything a third party checks on one batch alone (wire-format.md §6.1), in its order, stopping
 * at the first problem: the envelope and body decoded under the limits of §6.3 (deterministic CBOR,
 * nothing built past a limit), the signature over the body bytes under `dev`, then the body's
 * schema, reading count, ids, time range and Merkle roots. Chain checks need the neighbouring
 * batches and are the caller's.
 */
export function verifyBatchEnvelope(envelope: Uint8Array): SignedBatch {
  const env = envelopeSchema.safeParse(decodeOrMalformed(envelope, 'envelope', ENVELOPE_LIMITS).value);
  if (!env.success) throw new BatchVerificationError('malformed', describeZodError('envelope', env.error));
  const { body: bodyBytes, sig } = env.data;
  const decoded = decodeOrMalformed(bodyBytes, 'body', BODY_LIMITS);
  const raw = decoded.value;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw) || raw instanceof Uint8Array) throw new BatchVerificationError('malformed', 'body: not a map');
  const claimed = claimedOf(raw as Record<string, unknown>);
  // §6.1 step 3 before the schema: only `dev` is needed to check the signature.
  const dev = (raw as Record<string, unknown>).dev;
  if (!(dev instanceof Uint8Array) || dev.length !== 32) throw new BatchVerificationError('malformed', 'body: field dev must be a 32-byte byte string', claimed);
  const weak = weakPointReason(dev);
  if (weak) throw new BatchVerificationError('bad-signature', `device key dev is ${weak}`, claimed);
  if (!verifySignature(dev, bodyBytes, sig)) {
    throw new BatchVerificationError('bad-signature', `signature does not verify with the device key of batch ${claimed.claimed_seq ?? '?'}`, claimed);
  }
  const parsedBody = bodySchema.safeParse(raw);
  if (!parsedBody.success) throw new BatchVerificationError('malformed', describeZodError('body', parsedBody.error), claimed);
  const body = parsedBody.data;
  if (body.n !== body.r.length) throw new BatchVerificationError('bad-count', `n is ${body.n} but the batch holds ${body.r.length} readings`, claimed);
  const ids = new Set<number>();
  for (const x of body.r) {
    if (ids.has(x.i)) throw new BatchVerificationError('duplicate-reading-id', `reading id ${x.i} appears twice`, claimed);
    ids.add(x.i);
  }
  const verdictIds = new Set<number>();
  for (const x of body.vd ?? []) {
    if (verdictIds.has(x.i)) throw new BatchVerificationError('duplicate-verdict-id', `verdict id ${x.i} appears twice`, claimed);
    verdictIds.add(x.i);
  }
  const { t0, t1 } = timeRange(body);
  if (t0 !== body.t0 || t1 !== body.t1) {
    throw new BatchVerificationError('bad-time-range', `t0/t1 are ${body.t0}/${body.t1} but the readings and verdicts span ${t0}/${t1}`, claimed);
  }
  // §3, §4.4: the leaves are the items' bytes inside the (deterministic) body, sliced, not re-encoded.
  const slices = (path: string) => decoded.spans.get(path)!.map(([from, to]) => bodyBytes.subarray(from, to));
  if (!sameBytes(merkleRoot(slices('r')), body.root)) throw new BatchVerificationError('bad-merkle-root', 'Merkle root does not match the readings', claimed);
  if (body.vd && !sameBytes(merkleRoot(slices('vd')), body.vroot!)) {
    throw new BatchVerificationError('bad-merkle-root', 'verdict Merkle root vroot does not match the verdicts', claimed);
  }
  return { body, bodyBytes, signature: sig, hash: sha256(bodyBytes), envelope };
}

export function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

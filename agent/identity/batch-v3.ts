import { z } from 'zod';
import type { StoredReading } from '../types.js';
import { BatchVerificationError, dropsSchema, readingSchema, spanOfTimes, toBatchReading, type BatchDrop, type BatchHeader, type EncodedReadings } from './batch-format.js';
import { CborLimitError, decodeBounded, type CborLimits } from './bounded-cbor.js';
import { canonicalEncode, canonicalEncodeAll, canonicalEncodeWithArray } from './canonical.js';
import { eventWireSchema, summaryProblem, toBatchEvent, type StoredEvent } from './event-format.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { merkleRoot, merkleRootOfLeafHashes, sha256 } from './merkle.js';
import { defineLazyReadings, type ReadingLeaves } from './reading-leaf.js';
import { open, seal, SEAL_ALG, type SealInfo } from './seal.js';
import { modelRefSchema, toBatchVerdicts, verdictSchema, type StoredVerdict } from './verdict-format.js';

/** docs/wire-format.md §12: header-signed batches with events, flags, sealed data and attestations. */
export const BATCH_FORMAT_V3 = 'edge-agent/batch/3';

/** §12.9 limits; enforced before anything is decoded that could exceed them. */
export const V3_LIMITS = {
  envelopeBytes: 4 * 1024 * 1024 + 16 * 1024,
  headerBytes: 16 * 1024,
  dataBytes: 4 * 1024 * 1024,
  readings: 10_000,
  verdicts: 10_000,
  events: 1_000,
  drops: 10_000,
  attestations: 1_000,
  models: 64,
} as const;

/** What decode() allows per structure (bounded-cbor.ts); the schemas below then check each field exactly. */
const V3_DECODE_LIMITS: Record<string, CborLimits> = {
  envelope: { maxBytes: V3_LIMITS.envelopeBytes, maxDepth: 1, maxTextBytes: 8, maxByteStringBytes: V3_LIMITS.dataBytes + 1024, maxLength: 3, maxItems: 3 },
  header: { maxBytes: V3_LIMITS.headerBytes, maxDepth: 4, maxTextBytes: 768, maxByteStringBytes: 64, maxLength: 32, lengthByPath: { m: V3_LIMITS.models }, maxItems: 2_000 },
  data: {
    maxBytes: V3_LIMITS.dataBytes,
    maxDepth: 4,
    maxTextBytes: 768,
    maxByteStringBytes: 512,
    maxLength: 32,
    lengthByPath: { r: V3_LIMITS.readings, vd: V3_LIMITS.verdicts, ev: V3_LIMITS.events, drops: V3_LIMITS.drops, att: V3_LIMITS.attestations, 'att.*.r': V3_LIMITS.readings },
    maxItems: 2_000_000,
  },
  element: { maxBytes: V3_LIMITS.dataBytes, maxDepth: 2, maxTextBytes: 768, maxByteStringBytes: 512, maxLength: 32, maxItems: 1_000 },
};

/** §12.3 reading flags; bits 10 and up must be 0. */
export const READING_FLAGS = {
  out_of_range: 1,
  stuck: 2,
  jump: 4,
  duplicate_time: 8,
  gap_before: 16,
  quarantined: 32,
  maintenance: 64,
  clock_step: 128,
  seq_regress: 256,
  future_time: 512,
} as const;
/** Verdict flags (docs/wire-format.md §12.3): bit 1 `unlearned` and bit 2 `suppressed` are set for readings quarantined or in maintenance (ModelRunner.scoreUnlearned). */
export const VERDICT_FLAGS = { filled: 1, unlearned: 2, suppressed: 4 } as const;

const byteString = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a byte string');
const bytesN = (n: number) => byteString.refine((b) => b.length === n, `must be ${n} bytes`);
const int = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
const uint = int.refine((n) => n >= 0, 'must not be negative');
const flags = (bits: number) => uint.refine((f) => f >= 1 && f < 2 ** bits, `must be 1..${2 ** bits - 1} (unknown flag bits are malformed)`);
const increasing = (what: string) => (xs: readonly { i: number }[]) => xs.every((x, k) => k === 0 || x.i > xs[k - 1]!.i) || `${what} ids must strictly increase`;
const salt = bytesN(16);

const readingV3 = readingSchema.extend({ f: flags(10).optional(), z: salt.optional() });
const verdictV3 = verdictSchema.extend({ f: flags(3).optional(), z: salt.optional() });
const eventV3 = eventWireSchema.extend({ z: salt.optional() }).superRefine((e, ctx) => {
  const problem = summaryProblem(e);
  if (problem) ctx.addIssue({ code: 'custom', message: problem, path: ['d'] });
});
const attestationSchema = z
  .object({ k: bytesN(32), msg: byteString.refine((b) => b.length >= 1 && b.length <= 512, 'must be 1-512 bytes'), sig: bytesN(64), r: z.array(uint).min(1).max(V3_LIMITS.readings) })
  .strict();
const sealSchema = z.object({ alg: z.literal(SEAL_ALG), to: bytesN(32), epk: bytesN(32), nonce: bytesN(24) }).strict();

const checked = <T extends readonly { i: number }[]>(schema: z.ZodType<T>, what: string) =>
  schema.refine((xs) => increasing(what)(xs) === true, `${what} ids must strictly increase`);

// §12.2
const headerSchema = z
  .object({
    fmt: z.literal(BATCH_FORMAT_V3),
    dev: bytesN(32),
    seq: uint.refine((n) => n >= 1, 'starts at 1'),
    prev: bytesN(32),
    boot: uint,
    sync: z.boolean(),
    created: int,
    t0: int,
    t1: int,
    n: uint.refine((n) => n <= V3_LIMITS.readings, `at most ${V3_LIMITS.readings}`),
    root: bytesN(32),
    nv: uint.refine((n) => n <= V3_LIMITS.verdicts, `at most ${V3_LIMITS.verdicts}`),
    vroot: bytesN(32),
    ne: uint.refine((n) => n <= V3_LIMITS.events, `at most ${V3_LIMITS.events}`),
    eroot: bytesN(32),
    m: z
      .array(modelRefSchema)
      .max(V3_LIMITS.models)
      .refine((m) => new Set(m.map((x) => `${x.id}:${Buffer.from(x.h).toString('hex')}`)).size === m.length, 'a model appears twice'),
    dh: bytesN(32),
    ch: bytesN(32).optional(),
    enc: sealSchema.optional(),
  })
  .strict()
  .refine((h) => (h.ch === undefined) === (h.enc === undefined), { message: 'ch and enc are present together or not at all', path: ['enc'] });

// §12.3
const dataSchema = z
  .object({
    r: checked(z.array(readingV3).max(V3_LIMITS.readings), 'reading'),
    vd: checked(z.array(verdictV3).max(V3_LIMITS.verdicts), 'verdict'),
    ev: checked(z.array(eventV3).max(V3_LIMITS.events), 'event'),
    drops: dropsSchema
      .refine((d) => d.length <= V3_LIMITS.drops, `at most ${V3_LIMITS.drops} entries`)
      .refine((d) => d.every((x, k) => k === 0 || Buffer.compare(Buffer.from(d[k - 1]!.s), Buffer.from(x.s)) < 0), 'entries must be sorted by s')
      .optional(),
    att: z.array(attestationSchema).min(1).max(V3_LIMITS.attestations).optional(),
  })
  .strict();

const envelopeSchema = z.union([
  z.object({ hdr: byteString, sig: bytesN(64), data: byteString }).strict(),
  z.object({ hdr: byteString, sig: bytesN(64), sealed: byteString }).strict(),
]);

export type BatchHeaderV3 = z.infer<typeof headerSchema>;
export type BatchDataV3 = z.infer<typeof dataSchema>;
export type BatchAttestation = z.infer<typeof attestationSchema>;

export interface SignedBatchV3 {
  header: BatchHeaderV3;
  headerBytes: Uint8Array;
  signature: Uint8Array;
  /** sha256(headerBytes): the batch hash, the next batch's `prev` (§12.1). */
  hash: Uint8Array;
  envelope: Uint8Array;
  /** The plaintext data; absent when a sealed batch was verified without the recipient key. */
  data?: BatchDataV3;
  dataBytes?: Uint8Array;
  sealed: boolean;
}

export interface BatchContentV3 {
  readings: readonly StoredReading[];
  verdicts?: readonly StoredVerdict[];
  events?: readonly StoredEvent[];
  drops?: readonly BatchDrop[];
  attestations?: readonly BatchAttestation[];
}

const EMPTY_ROOT = sha256();

export interface BuildOptionsV3 {
  /** Seal the data to this Ed25519 public key (§12.6). */
  sealTo?: Uint8Array;
  /** Fixed ephemeral key and nonce instead of random ones: test vectors only. */
  sealFixed?: { ephemeralSecret: Uint8Array; nonce: Uint8Array };
}

export function buildBatchV3(identity: Identity, head: BatchHeader, content: BatchContentV3, options: BuildOptionsV3 = {}): SignedBatchV3 {
  const sealed = options.sealTo !== undefined;
  const r = content.readings.map((x) => {
    const w: z.infer<typeof readingV3> = toBatchReading(x);
    if (x.flags) w.f = x.flags;
    if (sealed) w.z = identity.saltFor('r', x.id);
    return w;
  });
  const leaves = canonicalEncodeAll(r);
  const { t0, t1 } = spanOfTimes([r]);
  const batch = assembleV3(identity, head, { count: r.length, parts: leaves, root: merkleRoot(leaves), t0, t1 }, content, options);
  batch.data!.r = r;
  return batch;
}

/**
 * buildBatchV3 of a plain (not sealed: a sealed leaf carries a salt) batch whose readings are
 * given as their leaves, encoded when they were committed (pipeline/leaf-cache.ts): the same
 * bytes; `data.r` is decoded only when read.
 */
export function buildBatchV3FromLeaves(identity: Identity, head: BatchHeader, readings: ReadingLeaves, content: Omit<BatchContentV3, 'readings'>): SignedBatchV3 {
  const root = merkleRootOfLeafHashes(readings.leafHashes, readings.count);
  const batch = assembleV3(identity, head, { count: readings.count, parts: readings.parts, root, t0: readings.t0, t1: readings.t1 }, content, {});
  defineLazyReadings(batch.data!, 'r', readings);
  return batch;
}

/** Everything of buildBatchV3 but the readings' objects: `data.r` is the caller's to set. */
function assembleV3(identity: Identity, head: BatchHeader, readings: EncodedReadings, content: Omit<BatchContentV3, 'readings'>, options: BuildOptionsV3): SignedBatchV3 {
  const sealed = options.sealTo !== undefined;
  const verdicts = content.verdicts ?? [];
  const { m, vd: vd2 } = verdicts.length > 0 ? toBatchVerdicts(verdicts) : { m: [], vd: [] };
  const vd = vd2.map((v, k) => {
    const w: z.infer<typeof verdictV3> = { ...v };
    const f = verdicts[k]!.flags;
    if (f) w.f = f;
    if (sealed) w.z = identity.saltFor('vd', v.i);
    return w;
  });
  const ev = (content.events ?? []).map((e) => {
    const w: z.infer<typeof eventV3> = toBatchEvent(e);
    if (sealed) w.z = identity.saltFor('ev', e.id);
    return w;
  });
  const data: BatchDataV3 = { r: [], vd, ev }; // r is the caller's to set (here for the object's key order)
  if (content.drops && content.drops.length > 0) data.drops = [...content.drops].sort((a, b) => Buffer.compare(Buffer.from(a.s), Buffer.from(b.s))).map((d) => ({ s: d.s, n: d.n }));
  if (content.attestations && content.attestations.length > 0) data.att = [...content.attestations];
  if (readings.count + vd.length + ev.length + (data.drops?.length ?? 0) === 0) throw new Error('a batch holds at least one reading, verdict, event or drop entry (wire-format.md §12.2)');
  // The readings' leaves are `r`'s items: encoded once, for the root and the data alike.
  const dataBytes = canonicalEncodeWithArray(data, 'r', readings.count, readings.parts);
  const { t0, t1 } = timeSpanFrom(readings, data, head.createdMs);
  const header: BatchHeaderV3 = {
    fmt: BATCH_FORMAT_V3,
    dev: identity.publicKey,
    seq: head.seq,
    prev: head.prevHash,
    boot: head.bootCounter,
    sync: head.clockSynced,
    created: head.createdMs,
    t0,
    t1,
    n: readings.count,
    root: readings.root,
    nv: vd.length,
    vroot: merkleRoot(canonicalEncodeAll(vd)),
    ne: ev.length,
    eroot: merkleRoot(canonicalEncodeAll(ev)),
    m,
    dh: sha256(dataBytes),
  };
  let payload: { data: Uint8Array } | { sealed: Uint8Array } = { data: dataBytes };
  if (options.sealTo) {
    const box = seal(dataBytes, options.sealTo, options.sealFixed);
    header.ch = sha256(box.sealed);
    header.enc = box.enc;
    payload = { sealed: box.sealed };
  }
  const headerBytes = canonicalEncode(header);
  const signature = identity.sign(headerBytes);
  const envelope = canonicalEncode({ hdr: headerBytes, sig: signature, ...payload });
  return { header, headerBytes, signature, hash: sha256(headerBytes), envelope, data, dataBytes, sealed };
}

/** timeSpan with the readings' span given (at a cut they may be leaves, not objects). */
function timeSpanFrom(readings: { t0: number; t1: number }, data: Pick<BatchDataV3, 'vd' | 'ev'>, created: number): { t0: number; t1: number } {
  const span = spanOfTimes([data.vd, data.ev], readings);
  return span.t0 === Infinity ? { t0: created, t1: created } : span;
}

/** §12.2: t0/t1 over readings, verdicts and events; both `created` when there are none. */
function timeSpan(data: Pick<BatchDataV3, 'r' | 'vd' | 'ev'>, created: number): { t0: number; t1: number } {
  return timeSpanFrom(spanOfTimes([data.r]), data, created);
}

function parse<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const parsed = schema.safeParse(value);
  if (parsed.success) return parsed.data;
  const first = parsed.error.issues[0]!;
  throw new BatchVerificationError('malformed', `${what}: field ${first.path.join('.') || '(root)'} ${first.message}`);
}

function decode(bytes: Uint8Array, what: string): unknown {
  // Bounded (§12.9 limits checked while decoding, nothing built past one): issue 12's 2,000,000 empty maps cost nothing here either.
  try {
    return decodeBounded(bytes, V3_DECODE_LIMITS[what] ?? V3_DECODE_LIMITS.element!).value;
  } catch (err) {
    if (err instanceof CborLimitError) throw new BatchVerificationError('malformed', `${what}: ${err.message} (byte ${err.offset})`);
    throw err;
  }
}

/** A signed header's fields, checked against §12.2 (the signature is the caller's). */
export function parseV3Header(headerBytes: Uint8Array): BatchHeaderV3 {
  if (headerBytes.length > V3_LIMITS.headerBytes) throw new BatchVerificationError('malformed', `header is ${headerBytes.length} bytes, over the ${V3_LIMITS.headerBytes} of §12.9`);
  return parse(headerSchema, decode(headerBytes, 'header'), 'header');
}

/** One reading, verdict or event leaf, checked against §12.3/§12.5 (for proofs, §12.8). */
export function parseV3Element(kind: 'reading' | 'verdict' | 'event', leaf: Uint8Array, header: BatchHeaderV3): unknown {
  const schema = kind === 'reading' ? readingV3 : kind === 'verdict' ? verdictV3 : eventV3;
  const element = parse(schema as z.ZodType<unknown>, decode(leaf, kind), kind);
  if (kind === 'verdict' && (element as { m: number }).m >= header.m.length) throw new BatchVerificationError('malformed', "verdict: field m names no entry of the header's m");
  return element;
}

/** True for an encoded envelope of version 3 (§12.1: it has `hdr`, versions 1 and 2 have `body`). */
export function isV3Envelope(envelope: Uint8Array): boolean {
  // A canonical map of 3 entries whose first key is the text "hdr": a3 63 686472.
  return envelope.length > 5 && envelope[0] === 0xa3 && envelope[1] === 0x63 && envelope[2] === 0x68 && envelope[3] === 0x64 && envelope[4] === 0x72;
}

/**
 * The checks of §12.9 in order, reporting the first failure. `openWith` is the recipient's box
 * secret key (Identity.boxSecretKey()); without it a sealed batch is checked as a relay checks it
 * (signature, chain fields, `ch`) and `data` is absent.
 */
export function verifyBatchV3Envelope(envelope: Uint8Array, options: { openWith?: Uint8Array } = {}): SignedBatchV3 {
  if (envelope.length > V3_LIMITS.envelopeBytes) throw new BatchVerificationError('malformed', `envelope is ${envelope.length} bytes, over the ${V3_LIMITS.envelopeBytes} of §12.9`);
  const env = parse(envelopeSchema, decode(envelope, 'envelope'), 'envelope');
  const header = parseV3Header(env.hdr);
  if (!verifySignature(header.dev, env.hdr, env.sig)) throw new BatchVerificationError('bad-signature', `signature does not verify with the device key of batch ${header.seq}`);
  const hash = sha256(env.hdr);
  const base = { header, headerBytes: env.hdr, signature: env.sig, hash, envelope };
  let dataBytes: Uint8Array;
  if ('sealed' in env) {
    if (!header.enc || !header.ch) throw new BatchVerificationError('malformed', 'a sealed envelope needs enc and ch in its header');
    if (!equal(sha256(env.sealed), header.ch)) throw new BatchVerificationError('bad-data-hash', 'sha256 of the sealed bytes is not the header ch');
    if (!options.openWith) return { ...base, sealed: true };
    const opened = open(env.sealed, header.enc as SealInfo, options.openWith);
    if (!opened) throw new BatchVerificationError('undecryptable', `sealed to ${Buffer.from(header.enc.to).toString('hex')}: does not open with this receiver's key`);
    dataBytes = opened;
  } else {
    if (header.enc || header.ch) throw new BatchVerificationError('malformed', 'a plain envelope must not have enc or ch in its header');
    dataBytes = env.data;
  }
  if (!equal(sha256(dataBytes), header.dh)) throw new BatchVerificationError('bad-data-hash', 'sha256 of the data is not the header dh');
  if (dataBytes.length > V3_LIMITS.dataBytes) throw new BatchVerificationError('malformed', `data is ${dataBytes.length} bytes, over the ${V3_LIMITS.dataBytes} of §12.9`);
  const data = parse(dataSchema, decode(dataBytes, 'data'), 'data');
  checkData(header, data, 'sealed' in env);
  return { ...base, data, dataBytes, sealed: 'sealed' in env };
}

function checkData(header: BatchHeaderV3, data: BatchDataV3, sealed: boolean): void {
  const all = [...data.r, ...data.vd, ...data.ev];
  if (all.some((x) => (x.z !== undefined) !== sealed)) throw new BatchVerificationError('malformed', sealed ? 'every element of a sealed batch carries a salt z' : 'a plain batch carries no salt z');
  data.vd.forEach((v, k) => {
    if (v.m >= header.m.length) throw new BatchVerificationError('malformed', `data: field vd.${k}.m names no entry of the header's m`);
  });
  if (all.length + (data.drops?.length ?? 0) === 0) throw new BatchVerificationError('malformed', 'a batch holds at least one reading, verdict, event or drop entry');
  const ids = new Set(data.r.map((x) => x.i));
  for (const a of data.att ?? []) {
    if (!a.r.every((id, k) => ids.has(id) && (k === 0 || id > a.r[k - 1]!))) throw new BatchVerificationError('malformed', 'an attestation names a reading id not in the batch, or ids out of order');
  }
  if (header.n !== data.r.length || header.nv !== data.vd.length || header.ne !== data.ev.length) {
    throw new BatchVerificationError('bad-count', `n/nv/ne are ${header.n}/${header.nv}/${header.ne} but the data holds ${data.r.length}/${data.vd.length}/${data.ev.length}`);
  }
  const { t0, t1 } = timeSpan(data, header.created);
  if (t0 !== header.t0 || t1 !== header.t1) throw new BatchVerificationError('bad-time-range', `t0/t1 are ${header.t0}/${header.t1} but the contents span ${t0}/${t1}`);
  const roots: [string, Uint8Array, readonly unknown[]][] = [['root', header.root, data.r], ['vroot', header.vroot, data.vd], ['eroot', header.eroot, data.ev]];
  for (const [name, root, list] of roots) {
    const again = list.length === 0 ? EMPTY_ROOT : merkleRoot(canonicalEncodeAll(list));
    if (!equal(again, root)) throw new BatchVerificationError('bad-merkle-root', `${name} does not match the data`);
  }
  for (const a of data.att ?? []) {
    if (!verifySignature(a.k, a.msg, a.sig)) throw new BatchVerificationError('bad-attestation', `attestation by sensor key ${Buffer.from(a.k).toString('hex')} does not verify`);
  }
}

const equal = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));

import { z } from 'zod';
import { CborLimitError, decodeBounded, type CborLimits } from './bounded-cbor.js';
import { canonicalEncode } from './canonical.js';
import { weakPointReason } from './ed25519-points.js';
import { verifySignature, type Identity } from './keys.js';
import { bytes32, byteString, bytesOf, text, uint } from './wire-types.js';

/**
 * Signed update bundles (docs/updates.md): a model set or a config for a gateway, signed by a
 * publisher key the gateway trusts, carried in a receiver's reply or fetched from the URLs it names.
 * Decoded under hard limits (bounded-cbor.ts) before any object is built; verified in the order of
 * docs/updates.md §3, each failure a refusal with a stable reason.
 */
export const UPDATE_FORMAT = 'edge-agent/update/1';
/** Fits a receiver reply (64 KiB, uplink/http and uplink/mqtt) with room for the rest of the JSON and base64. */
export const MAX_UPDATE_ENVELOPE_BYTES = 40 * 1024;
export const MAX_UPDATE_FILES = 32;
export const MAX_UPDATE_TARGETS = 256;
/** One file of a bundle (an ONNX model) may be this large; the sum of a bundle at most MAX_UPDATE_TOTAL_BYTES. */
export const MAX_UPDATE_FILE_BYTES = 64 * 1024 * 1024;
export const MAX_UPDATE_TOTAL_BYTES = 256 * 1024 * 1024;
const MAX_URL_CHARS = 2048;

const ENVELOPE_LIMITS: CborLimits = {
  maxBytes: MAX_UPDATE_ENVELOPE_BYTES,
  maxDepth: 1,
  maxTextBytes: 8,
  maxByteStringBytes: 64,
  byteStringBytesByPath: { upd: MAX_UPDATE_ENVELOPE_BYTES },
  maxLength: 2,
  maxItems: 2,
};
const BODY_LIMITS: CborLimits = {
  maxBytes: MAX_UPDATE_ENVELOPE_BYTES,
  maxDepth: 3,
  maxTextBytes: MAX_URL_CHARS * 3,
  maxByteStringBytes: 32,
  byteStringBytesByPath: { 'files.*.b': MAX_UPDATE_ENVELOPE_BYTES },
  maxLength: 10,
  lengthByPath: { files: MAX_UPDATE_FILES, to: MAX_UPDATE_TARGETS },
  maxItems: 4 * MAX_UPDATE_FILES * 2 + MAX_UPDATE_TARGETS + 20,
};

export const BUNDLE_ID = /^[a-z0-9][a-z0-9._-]{0,63}$/;
/** A plain file name: bundles carry flat sets (manifest.json beside its models), never a path. */
const FILE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const fileSchema = z
  .object({
    p: z.string().regex(FILE_NAME, 'must be a plain file name ([A-Za-z0-9._-], no directory)'),
    h: bytes32,
    n: uint.refine((n) => n <= MAX_UPDATE_FILE_BYTES, `must be at most ${MAX_UPDATE_FILE_BYTES} bytes`),
    b: byteString.optional(),
    u: text(1, MAX_URL_CHARS).refine((u) => /^https?:\/\/[^\s]+$/.test(u), 'must be an http:// or https:// URL').optional(),
  })
  .strict()
  .refine((f) => (f.b === undefined) !== (f.u === undefined), 'needs exactly one of b (inline bytes) or u (URL)')
  .refine((f) => f.b === undefined || f.b.length === f.n, 'n must be the length of b');

const bodySchema = z
  .object({
    fmt: z.literal(UPDATE_FORMAT),
    id: z.string().regex(BUNDLE_ID, 'must be 1-64 of [a-z0-9._-], starting with a letter or digit'),
    ver: text(1, 64),
    kind: z.enum(['models', 'config']),
    pub: bytesOf(32).refine((k) => weakPointReason(k) === undefined, 'must be a usable Ed25519 public key'),
    at: uint,
    to: z.array(bytes32).min(1).max(MAX_UPDATE_TARGETS).optional(),
    files: z.array(fileSchema).min(1).max(MAX_UPDATE_FILES),
  })
  .strict()
  .superRefine((b, ctx) => {
    const names = b.files.map((f) => f.p);
    if (new Set(names).size !== names.length) ctx.addIssue({ code: 'custom', path: ['files'], message: 'a file name appears twice' });
    if (b.files.reduce((s, f) => s + f.n, 0) > MAX_UPDATE_TOTAL_BYTES) ctx.addIssue({ code: 'custom', path: ['files'], message: `together more than ${MAX_UPDATE_TOTAL_BYTES} bytes` });
    if (b.kind === 'models' && !names.includes('manifest.json')) ctx.addIssue({ code: 'custom', path: ['files'], message: 'a model set needs manifest.json' });
    if (b.kind === 'config' && (names.length !== 1 || names[0] !== 'edge-agent.yaml')) ctx.addIssue({ code: 'custom', path: ['files'], message: 'a config bundle carries exactly one file, edge-agent.yaml' });
  });

export type UpdateBundle = z.infer<typeof bodySchema>;
export type UpdateFile = UpdateBundle['files'][number];

/** Why a bundle is refused (docs/updates.md §3); carried in the update.refused event's `reason`. */
export type RefusalReason =
  | 'malformed'
  | 'untrusted-publisher'
  | 'bad-signature'
  | 'not-for-this-device'
  | 'fetch-failed'
  | 'bad-sha256'
  | 'invalid'
  | 'probe-failed'
  | 'shadow-disagrees'
  | 'shadow-inconclusive'
  | 'busy';

export class UpdateRefused extends Error {
  constructor(
    readonly reason: RefusalReason,
    message: string,
    /** The bundle id and version when the bundle got far enough to name them. */
    readonly bundle?: { id: string; ver: string; kind: string },
  ) {
    super(message);
    this.name = 'UpdateRefused';
  }
}

function decode(bytes: Uint8Array, what: string, limits: CborLimits): unknown {
  try {
    return decodeBounded(bytes, limits).value;
  } catch (err) {
    if (err instanceof CborLimitError) throw new UpdateRefused('malformed', `${what}: ${err.message} (byte ${err.offset})`);
    throw new UpdateRefused('malformed', `${what}: ${(err as Error).message}`);
  }
}

function issueText(error: z.ZodError): string {
  const i = error.issues[0]!;
  return `${i.path.join('.') || '(root)'} ${i.message}`;
}

/** Signs a bundle as its publisher: the envelope `{"sig", "upd"}` (docs/updates.md §2). */
export function signUpdate(publisher: Identity, fields: Omit<UpdateBundle, 'fmt' | 'pub'>): Uint8Array {
  const body: UpdateBundle = { fmt: UPDATE_FORMAT, pub: publisher.publicKey, ...fields };
  const checked = bodySchema.safeParse(body);
  if (!checked.success) throw new Error(`update bundle: ${issueText(checked.error)}`);
  const upd = canonicalEncode(body);
  const envelope = canonicalEncode({ sig: publisher.sign(upd), upd });
  if (envelope.length > MAX_UPDATE_ENVELOPE_BYTES) {
    throw new Error(`update bundle is ${envelope.length} bytes, over ${MAX_UPDATE_ENVELOPE_BYTES}: give the larger files by URL (u) instead of inline`);
  }
  return envelope;
}

/**
 * docs/updates.md §3 steps 1-5: size and shape of the envelope and the bundle, the publisher is the
 * trusted key, the signature verifies, and the bundle names this device (or no device list).
 */
/** Steps 1-2: the envelope and the bundle within their limits and exactly of their shape. */
function decodeUpdate(envelope: Uint8Array): { sig: Uint8Array; upd: Uint8Array; bundle: UpdateBundle } {
  if (envelope.length > MAX_UPDATE_ENVELOPE_BYTES) throw new UpdateRefused('malformed', `update envelope is ${envelope.length} bytes, over ${MAX_UPDATE_ENVELOPE_BYTES}`);
  const env = z.object({ sig: bytesOf(64), upd: byteString }).strict().safeParse(decode(envelope, 'update envelope', ENVELOPE_LIMITS));
  if (!env.success) throw new UpdateRefused('malformed', `update envelope: ${issueText(env.error)}`);
  const parsed = bodySchema.safeParse(decode(env.data.upd, 'update bundle', BODY_LIMITS));
  if (!parsed.success) throw new UpdateRefused('malformed', `update bundle: ${issueText(parsed.error)}`);
  return { ...env.data, bundle: parsed.data };
}

/**
 * docs/updates.md §3 steps 1-5: size and shape of the envelope and the bundle, the publisher is the
 * trusted key, the signature verifies, and the bundle names this device (or no device list).
 */
export function verifyUpdate(envelope: Uint8Array, expect: { publisherKey: Uint8Array; device: Uint8Array }): UpdateBundle {
  const { sig, upd, bundle: b } = decodeUpdate(envelope);
  const named = { id: b.id, ver: b.ver, kind: b.kind };
  const same = (x: Uint8Array, y: Uint8Array) => Buffer.from(x).equals(Buffer.from(y));
  if (!same(b.pub, expect.publisherKey)) throw new UpdateRefused('untrusted-publisher', `bundle ${b.id} is signed by another publisher key than update.publisher_key`, named);
  if (!verifySignature(b.pub, upd, sig)) throw new UpdateRefused('bad-signature', `bundle ${b.id}: the publisher signature does not verify`, named);
  if (b.to && !b.to.some((k) => same(k, expect.device))) throw new UpdateRefused('not-for-this-device', `bundle ${b.id} names ${b.to.length} devices, not this one`, named);
  return b;
}

/** The bundle's id, version, kind and targets, shape-checked but not verified: for the receiver's outbox only. */
export function peekUpdate(envelope: Uint8Array): UpdateBundle {
  return decodeUpdate(envelope).bundle;
}

import { z } from 'zod';
import { decodeNamed, type CborLimits } from './bounded-cbor.js';
import { canonicalEncode } from './canonical.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { byteString, bytesOf, int, text } from './wire-types.js';

/** A receiver's request that a device upload in full what summary mode kept (docs/wire-format.md §12.15). */
export const UPLOAD_REQUEST_FORMAT = 'edge-agent/upload-request/1';
/** Sensors one request names at most (as `edge-agent upload`). */
export const UPLOAD_REQUEST_MAX_SENSORS = 64;
/** 64 sensor ids of 256 units (up to 3 UTF-8 bytes each) and the rest: the largest envelope a device decodes. */
export const UPLOAD_REQUEST_MAX_BYTES = 52 * 1024;

const ENVELOPE_LIMITS: CborLimits = { maxBytes: UPLOAD_REQUEST_MAX_BYTES, maxDepth: 1, maxTextBytes: 8, maxByteStringBytes: UPLOAD_REQUEST_MAX_BYTES, maxLength: 2, maxItems: 2 };
const BODY_LIMITS: CborLimits = { maxBytes: UPLOAD_REQUEST_MAX_BYTES, maxDepth: 2, maxTextBytes: 768, maxByteStringBytes: 32, maxLength: 9, lengthByPath: { s: UPLOAD_REQUEST_MAX_SENSORS }, maxItems: 9 + UPLOAD_REQUEST_MAX_SENSORS };

const bodySchema = z
  .object({
    fmt: z.literal(UPLOAD_REQUEST_FORMAT),
    /** The receiver's key, which signs. */
    rcv: bytesOf(32),
    /** The device asked. */
    dev: bytesOf(32),
    id: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/, 'must be 1-64 characters of A-Z a-z 0-9 _ -'),
    s: z.array(text(1, 256)).min(1).max(UPLOAD_REQUEST_MAX_SENSORS),
    from: int,
    to: int,
    by: text(1, 256),
    at: int,
  })
  .strict()
  .refine((b) => b.from <= b.to, { message: 'from must not be after to', path: ['from'] });
const envelopeSchema = z.object({ req: byteString, sig: bytesOf(64) }).strict();

export type UploadRequest = z.infer<typeof bodySchema>;
export type UploadRequestFields = Omit<UploadRequest, 'fmt' | 'rcv'>;

export function signUploadRequest(receiver: Identity, fields: UploadRequestFields): Uint8Array {
  const body = canonicalEncode({ fmt: UPLOAD_REQUEST_FORMAT, rcv: receiver.publicKey, ...fields });
  return canonicalEncode({ req: body, sig: receiver.sign(body) });
}

/**
 * Checks an upload request under hard limits (§12.15): signed by `receiverKey`, for `device`.
 * Throws with what is wrong; the caller counts and logs it.
 */
export function verifyUploadRequest(envelope: Uint8Array, receiverKey: Uint8Array, device: Uint8Array): UploadRequest {
  const env = envelopeSchema.safeParse(decodeNamed(envelope, 'upload request', ENVELOPE_LIMITS));
  if (!env.success) throw new Error(`upload request envelope: ${env.error.issues[0]!.path.join('.')} ${env.error.issues[0]!.message}`);
  const body = bodySchema.safeParse(decodeNamed(env.data.req, 'upload request body', BODY_LIMITS));
  if (!body.success) throw new Error(`upload request: ${body.error.issues[0]!.path.join('.')} ${body.error.issues[0]!.message}`);
  const r = body.data;
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
  if (!same(r.rcv, receiverKey)) throw new Error('upload request is signed by another key than the configured receiver key');
  if (!verifySignature(r.rcv, env.data.req, env.data.sig)) throw new Error('upload request signature does not verify');
  if (!same(r.dev, device)) throw new Error('upload request is for another device');
  return r;
}

import { z } from 'zod';
import { CborLimitError, decodeBounded, type CborLimits } from './bounded-cbor.js';
import { canonicalEncode } from './canonical.js';
import { weakPointReason } from './ed25519-points.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { RECEIPT_BODY_LIMITS, RECEIPT_ENVELOPE_LIMITS } from './wire-limits.js';
import { byteString, bytesOf as bytes } from './wire-types.js';

/** A delivery receipt signed by the receiver (docs/wire-format.md §8). */
export const RECEIPT_FORMAT = 'edge-agent/receipt/1';

const uint = z.number().int().nonnegative().refine(Number.isSafeInteger, 'must be a safe integer');

const receiptBodySchema = z
  .object({
    fmt: z.literal(RECEIPT_FORMAT),
    rcv: bytes(32).refine((k) => weakPointReason(k) === undefined, 'must be a usable Ed25519 public key (not of small order, canonically encoded)'),
    dev: bytes(32),
    seq: uint,
    hash: bytes(32),
    at: uint,
  })
  .strict();
const receiptEnvelopeSchema = z.object({ body: byteString, sig: bytes(64) }).strict();

export type ReceiptBody = z.infer<typeof receiptBodySchema>;

export function signReceipt(receiver: Identity, fields: Omit<ReceiptBody, 'fmt' | 'rcv'>): Uint8Array {
  const body: ReceiptBody = { fmt: RECEIPT_FORMAT, rcv: receiver.publicKey, ...fields };
  const bodyBytes = canonicalEncode(body);
  return canonicalEncode({ body: bodyBytes, sig: receiver.sign(bodyBytes) });
}

export interface ReceiptExpectation {
  receiverKey: Uint8Array;
  device: Uint8Array;
  seq: number;
  batchHash: Uint8Array;
}

function decode(bytes: Uint8Array, what: string, limits: CborLimits): unknown {
  try {
    return decodeBounded(bytes, limits).value;
  } catch (err) {
    if (err instanceof CborLimitError) throw new Error(`${what}: ${err.message} (byte ${err.offset})`);
    throw err;
  }
}

/** Checks that a receipt is signed by the expected receiver and speaks of exactly this batch (§8), decoded under hard limits. */
export function verifyReceipt(envelope: Uint8Array, expect: ReceiptExpectation): ReceiptBody {
  const env = receiptEnvelopeSchema.safeParse(decode(envelope, 'receipt', RECEIPT_ENVELOPE_LIMITS));
  if (!env.success) throw new Error(`receipt envelope: ${env.error.issues[0]!.path.join('.')} ${env.error.issues[0]!.message}`);
  const body = receiptBodySchema.safeParse(decode(env.data.body, 'receipt body', RECEIPT_BODY_LIMITS));
  if (!body.success) throw new Error(`receipt body: ${body.error.issues[0]!.path.join('.')} ${body.error.issues[0]!.message}`);
  const r = body.data;
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
  if (!same(r.rcv, expect.receiverKey)) throw new Error('receipt is from another receiver key than the one configured');
  if (!verifySignature(r.rcv, env.data.body, env.data.sig)) throw new Error('receipt signature does not verify');
  if (!same(r.dev, expect.device) || r.seq !== expect.seq || !same(r.hash, expect.batchHash)) {
    throw new Error(`receipt is for another batch (seq ${r.seq}), not seq ${expect.seq}`);
  }
  return r;
}

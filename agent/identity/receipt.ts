import { z } from 'zod';
import { isV3Envelope, parseV3Header } from './batch-v3.js';
import { batchCidText } from './cid.js';
import { decodeNamed } from './bounded-cbor.js';
import { canonicalDecode, canonicalEncode } from './canonical.js';
import { weakPointReason } from './ed25519-points.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { RECEIPT_BODY_LIMITS, RECEIPT_ENVELOPE_LIMITS } from './wire-limits.js';
import { byteString, bytesOf as bytes } from './wire-types.js';

/** A delivery receipt signed by the receiver (docs/wire-format.md §8). */
export const RECEIPT_FORMAT = 'edge-agent/receipt/1';
/** The receipt of a version-3 batch (§12.10): also names the data hash, the CID and the durability. */
export const RECEIPT_FORMAT_V2 = 'edge-agent/receipt/2';

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
const receiptV2BodySchema = receiptBodySchema.extend({
  fmt: z.literal(RECEIPT_FORMAT_V2),
  dh: bytes(32),
  ch: bytes(32).optional(),
  cid: z.string().regex(/^b[a-z2-7]{1,100}$/, 'must be a base32 CIDv1'),
  dur: z.enum(['disk', 'quorum']),
});
const receiptEnvelopeSchema = z.object({ body: byteString, sig: bytes(64) }).strict();

export type ReceiptBody = z.infer<typeof receiptBodySchema> | z.infer<typeof receiptV2BodySchema>;
type ReceiptFields = Omit<z.infer<typeof receiptBodySchema>, 'fmt' | 'rcv'>;
/** The version-3 additions (§12.10); given, the receipt is `edge-agent/receipt/2`. */
export interface ReceiptV2Fields {
  dh: Uint8Array;
  ch?: Uint8Array;
  cid: string;
  dur: 'disk' | 'quorum';
}

export function signReceipt(receiver: Identity, fields: ReceiptFields, v2?: ReceiptV2Fields): Uint8Array {
  const body: ReceiptBody = v2 ? { fmt: RECEIPT_FORMAT_V2, rcv: receiver.publicKey, ...fields, ...v2 } : { fmt: RECEIPT_FORMAT, rcv: receiver.publicKey, ...fields };
  const bodyBytes = canonicalEncode(body);
  return canonicalEncode({ body: bodyBytes, sig: receiver.sign(bodyBytes) });
}

export interface ReceiptExpectation {
  receiverKey: Uint8Array;
  device: Uint8Array;
  seq: number;
  batchHash: Uint8Array;
  /**
   * The envelope sent. Given, a version-3 batch must get a receipt/2 whose `dh`, `ch` and `cid`
   * are this envelope's (§12.10), so the receipt proves which plaintext and ciphertext it holds.
   */
  envelope?: Uint8Array;
}

/** dh, ch and CID of a version-3 envelope, for checking its receipt/2 (§12.10); undefined for versions 1 and 2. */
function v3Binding(envelope: Uint8Array): { dh: Uint8Array; ch?: Uint8Array; cid: string } | undefined {
  if (!isV3Envelope(envelope)) return undefined;
  // Our own envelope, as we built it: no limits needed beyond the type's.
  const env = canonicalDecode(envelope, 'envelope') as { hdr: Uint8Array };
  const h = parseV3Header(env.hdr);
  return { dh: h.dh, ...(h.ch ? { ch: h.ch } : {}), cid: batchCidText(envelope) };
}

/** A validly signed receipt from another receiver key than the configured one (§8). */
export class ReceiverKeyMismatchError extends Error {
  constructor(readonly signer: Uint8Array) {
    super('receipt is from another receiver key than the one configured');
  }
}

/** Checks that a receipt is signed by the expected receiver and speaks of exactly this batch (§8), decoded under hard limits. */
export function verifyReceipt(envelope: Uint8Array, expect: ReceiptExpectation): ReceiptBody {
  const env = receiptEnvelopeSchema.safeParse(decodeNamed(envelope, 'receipt', RECEIPT_ENVELOPE_LIMITS));
  if (!env.success) throw new Error(`receipt envelope: ${env.error.issues[0]!.path.join('.')} ${env.error.issues[0]!.message}`);
  const decoded = decodeNamed(env.data.body, 'receipt body', RECEIPT_BODY_LIMITS);
  // Dispatch on fmt, so a broken receipt of either version gets that version's precise message.
  const isV2 = typeof decoded === 'object' && decoded !== null && (decoded as { fmt?: unknown }).fmt === RECEIPT_FORMAT_V2;
  const body = (isV2 ? receiptV2BodySchema : receiptBodySchema).safeParse(decoded);
  if (!body.success) throw new Error(`receipt body: ${body.error.issues[0]!.path.join('.')} ${body.error.issues[0]!.message}`);
  const r = body.data;
  const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
  // The signature first, under the key the receipt names: only a receipt that really comes from
  // another key is a key mismatch (an operator's config error), not a forgery.
  if (!verifySignature(r.rcv, env.data.body, env.data.sig)) throw new Error('receipt signature does not verify');
  if (!same(r.rcv, expect.receiverKey)) throw new ReceiverKeyMismatchError(r.rcv);
  if (!same(r.dev, expect.device) || r.seq !== expect.seq || !same(r.hash, expect.batchHash)) {
    throw new Error(`receipt is for another batch (seq ${r.seq}), not seq ${expect.seq}`);
  }
  const bound = expect.envelope ? v3Binding(expect.envelope) : undefined;
  if (bound) {
    if (r.fmt !== RECEIPT_FORMAT_V2) throw new Error(`batch ${expect.seq} is version 3 and needs an ${RECEIPT_FORMAT_V2} receipt, not ${r.fmt} (wire-format.md §12.10)`);
    const sameOpt = (a: Uint8Array | undefined, b: Uint8Array | undefined) => (a === undefined || b === undefined ? a === b : same(a, b));
    if (!same(r.dh, bound.dh) || !sameOpt(r.ch, bound.ch) || r.cid !== bound.cid) {
      throw new Error(`receipt for batch ${expect.seq} names another data hash, ciphertext hash or CID than the batch sent (wire-format.md §12.10)`);
    }
  }
  return r;
}

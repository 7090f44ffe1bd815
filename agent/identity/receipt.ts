import { z } from 'zod';
import { canonicalDecode, canonicalEncode } from './canonical.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';

/** A delivery receipt signed by the receiver (docs/wire-format.md §8). */
export const RECEIPT_FORMAT = 'edge-agent/receipt/1';

const byteString = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a byte string');
const bytes = (n: number) => byteString.refine((b) => b.length === n, `must be ${n} bytes`);
const uint = z.number().int().nonnegative().refine(Number.isSafeInteger, 'must be a safe integer');

const receiptBodySchema = z
  .object({
    fmt: z.literal(RECEIPT_FORMAT),
    rcv: bytes(32),
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

/** Checks that a receipt is signed by the expected receiver and speaks of exactly this batch. */
export function verifyReceipt(envelope: Uint8Array, expect: ReceiptExpectation): ReceiptBody {
  const env = receiptEnvelopeSchema.safeParse(canonicalDecode(envelope, 'receipt'));
  if (!env.success) throw new Error(`receipt envelope: ${env.error.issues[0]!.path.join('.')} ${env.error.issues[0]!.message}`);
  const body = receiptBodySchema.safeParse(canonicalDecode(env.data.body, 'receipt body'));
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

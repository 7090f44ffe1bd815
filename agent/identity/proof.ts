import { z } from 'zod';
import { BatchVerificationError } from './batch-format.js';
import { parseV3Header, parseV3Element, type BatchHeaderV3, type SignedBatchV3 } from './batch-v3.js';
import { canonicalEncode } from './canonical.js';
import { batchCidText } from './cid.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from './device-id.js';
import { verifySignature } from './keys.js';
import { auditPath, leafHash, rootFromAuditPath } from './merkle.js';

/** A proof that one reading, verdict or event is in a signed version-3 batch (docs/wire-format.md §12.8). */
export const PROOF_FORMAT = 'edge-agent/proof/1';
export type ProofKind = 'reading' | 'verdict' | 'event';

const hexText = (max: number) => z.string().regex(/^([0-9a-f]{2})*$/, 'must be lowercase hex').max(max * 2);
export const proofSchema = z
  .object({
    format: z.literal(PROOF_FORMAT),
    device: z.string().min(1).max(100),
    kind: z.enum(['reading', 'verdict', 'event']),
    hdr: hexText(16 * 1024),
    sig: hexText(64),
    index: z.number().int().min(0).max(10_000),
    leaf: hexText(64 * 1024),
    path: z.array(hexText(32)).max(20),
    cid: z.string().max(100).optional(),
  })
  .strict();
export type Proof = z.infer<typeof proofSchema>;

const listOf = { reading: 'r', verdict: 'vd', event: 'ev' } as const;

/** Proof of element `index` of a batch's readings, verdicts or events; the batch must hold its data. */
export function makeProof(batch: SignedBatchV3, kind: ProofKind, index: number): Proof {
  if (!batch.data) throw new Error(`batch ${batch.header.seq} is sealed and was not opened: no proof can be made without its data`);
  const list = batch.data[listOf[kind]] as readonly unknown[];
  const leaves = list.map((x) => canonicalEncode(x));
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return {
    format: PROOF_FORMAT,
    device: deviceIdFromPublicKey(batch.header.dev),
    kind,
    hdr: hex(batch.headerBytes),
    sig: hex(batch.signature),
    index,
    leaf: hex(leaves[index] ?? new Uint8Array()),
    path: auditPath(leaves, index).map(hex),
    cid: batchCidText(batch.envelope),
  };
}

export interface ProofCheck {
  header: BatchHeaderV3;
  element: unknown;
}

/**
 * Checks a proof offline (§12.8): the header's signature under the device key (the one named, or
 * `deviceKey` when given, which must match), the header's format, and the audit path from the
 * leaf to the header's root. Throws BatchVerificationError naming what failed.
 */
export function verifyProof(input: unknown, deviceKey?: Uint8Array): ProofCheck {
  const parsed = proofSchema.safeParse(input);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw new BatchVerificationError('malformed', `proof: field ${first.path.join('.') || '(root)'} ${first.message}`);
  }
  const p = parsed.data;
  const bytes = (h: string) => new Uint8Array(Buffer.from(h, 'hex'));
  let named: Uint8Array;
  try {
    named = publicKeyFromDeviceId(p.device);
  } catch (err) {
    throw new BatchVerificationError('malformed', `proof: device: ${(err as Error).message}`);
  }
  if (deviceKey && !Buffer.from(deviceKey).equals(Buffer.from(named))) throw new BatchVerificationError('bad-signature', `proof names device ${p.device}, not the expected key`);
  const hdrBytes = bytes(p.hdr);
  const header = parseV3Header(hdrBytes);
  if (!Buffer.from(header.dev).equals(Buffer.from(named))) throw new BatchVerificationError('bad-signature', 'the header is signed for another device than the proof names');
  if (!verifySignature(header.dev, hdrBytes, bytes(p.sig))) throw new BatchVerificationError('bad-signature', `the header signature of batch ${header.seq} does not verify`);
  const [size, root] = p.kind === 'reading' ? [header.n, header.root] : p.kind === 'verdict' ? [header.nv, header.vroot] : [header.ne, header.eroot];
  const leaf = bytes(p.leaf);
  const element = parseV3Element(p.kind, leaf, header);
  const again = rootFromAuditPath(leafHash(leaf), p.index, size, p.path.map(bytes));
  if (!again || !Buffer.from(again).equals(Buffer.from(root))) throw new BatchVerificationError('bad-merkle-root', `the ${p.kind} at index ${p.index} is not in batch ${header.seq} (the audit path does not lead to its root)`);
  return { header, element };
}

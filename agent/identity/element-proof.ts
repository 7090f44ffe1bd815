import type { AnyBatch } from './batch-any.js';
import { buildBatchV3, type BatchContentV3, type BatchDataV3, type SignedBatchV3 } from './batch-v3.js';
import type { Identity } from './keys.js';
import { makeProof, type Proof, type ProofKind } from './proof.js';

/**
 * Finding one element of a signed batch and proving it (docs/wire-format.md §12.8), for the
 * agent (`edge-agent proof`, `export --proofs`) and the receiver (`GET .../proof`).
 */

/** Why no proof can be made; `reason` is stable for programs, the message tells the operator what to do. */
export class ProofUnavailable extends Error {
  constructor(
    readonly reason: 'not-found' | 'not-batched' | 'needs-version-3' | 'sealed' | 'store-mismatch',
    message: string,
  ) {
    super(message);
    this.name = 'ProofUnavailable';
  }
}

const LIST = { reading: 'r', verdict: 'vd', event: 'ev' } as const;

/** The message for an element in a version 1 or 2 batch: their signature covers the whole body (§5), so no proof can leave the rest out. */
export function needsVersion3(kind: ProofKind, id: number, batch: AnyBatch): ProofUnavailable {
  return new ProofUnavailable(
    'needs-version-3',
    `${kind} ${id} is in batch ${batch.body.seq}, a version-${batch.version} batch: its signature covers the whole body, so it cannot be proven without revealing the rest of the batch; ` +
      'set batch.format: 3 in the agent config (docs/wire-format.md §12.12) so that later batches can prove every reading and verdict alone',
  );
}

/**
 * The data of a sealed version-3 batch as its device rebuilds it from its own stored rows, without
 * the recipient's key: the salts come from the device seed (§12.6), so the same rows give the same
 * leaves; the rebuilt roots must equal the signed header's, or the rows were changed since.
 */
export function rebuildSealedData(identity: Identity, batch: SignedBatchV3, stored: BatchContentV3): BatchDataV3 {
  const h = batch.header;
  if (!Buffer.from(identity.publicKey).equals(Buffer.from(h.dev))) throw new ProofUnavailable('sealed', `batch ${h.seq} is signed by another device key than this data dir's`);
  if (!h.enc) throw new Error(`batch ${h.seq} is not sealed`);
  const again = buildBatchV3(identity, { seq: h.seq, prevHash: h.prev, bootCounter: h.boot, clockSynced: h.sync, createdMs: h.created }, stored, { sealTo: h.enc.to });
  const roots = [
    ['readings', again.header.root, h.root],
    ['verdicts', again.header.vroot, h.vroot],
    ['events', again.header.eroot, h.eroot],
  ] as const;
  for (const [what, mine, signed] of roots) {
    if (!Buffer.from(mine).equals(Buffer.from(signed))) {
      throw new ProofUnavailable('store-mismatch', `the stored ${what} of sealed batch ${h.seq} differ from what it signed (run edge-agent verify --data-dir to see which)`);
    }
  }
  return again.data!;
}

/**
 * Proof of element `id` (its wire id `i`) of a verified batch. `data` is the batch's plaintext when
 * the batch was sealed and not opened here (the device's rebuild, above).
 */
export function proveElement(batch: AnyBatch, kind: ProofKind, id: number, data?: BatchDataV3): Proof {
  if (batch.version !== 3 || !batch.v3) throw needsVersion3(kind, id, batch);
  const v3: SignedBatchV3 = data ? { ...batch.v3, data } : batch.v3;
  if (!v3.data) throw new ProofUnavailable('sealed', `batch ${batch.body.seq} is sealed and its data could not be read here`);
  const list = v3.data[LIST[kind]] as readonly { i: number }[];
  const index = list.findIndex((x) => x.i === id);
  if (index < 0) throw new ProofUnavailable('not-found', `${kind} ${id} is not in batch ${batch.body.seq}`);
  return makeProof(v3, kind, index);
}

import type { AnyBatch } from './batch-any.js';
import { buildBatchV3, type BatchContentV3, type BatchDataV3, type SignedBatchV3 } from './batch-v3.js';
import type { Identity } from './keys.js';
import { canonicalEncode } from './canonical.js';
import { batchCidText } from './cid.js';
import { deviceIdFromPublicKey } from './device-id.js';
import { auditPathOf, leafHash, sha256 } from './merkle.js';
import { PROOF_FORMAT, type Proof, type ProofKind } from './proof.js';

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
  return new BatchProver(batch, data).prove(kind, id);
}

/**
 * Proofs of many elements of one batch (a data product takes hundreds from each): the leaves, their
 * hashes, the subtree roots and the CID are computed once per batch, not once per proof as
 * makeProof does. Gives exactly makeProof's proofs (RFC 6962 §2.1.1 PATH).
 */
export class BatchProver {
  /** Undefined for a version 1 or 2 batch: nothing of it can be proven alone. */
  private readonly v3: (SignedBatchV3 & { data: BatchDataV3 }) | undefined;
  private readonly trees = new Map<ProofKind, { leaves: Uint8Array[]; hashes: Uint8Array[]; ids: Map<number, number>; nodes: Map<number, Uint8Array> }>();
  private cid: string | undefined;

  constructor(
    private readonly batch: AnyBatch,
    data?: BatchDataV3,
  ) {
    if (batch.version !== 3 || !batch.v3) {
      this.v3 = undefined;
      return;
    }
    const v3: SignedBatchV3 = data ? { ...batch.v3, data } : batch.v3;
    if (!v3.data) throw new ProofUnavailable('sealed', `batch ${batch.body.seq} is sealed and its data could not be read here`);
    this.v3 = v3 as SignedBatchV3 & { data: BatchDataV3 };
  }

  prove(kind: ProofKind, id: number): Proof {
    const v3 = this.v3;
    if (!v3) throw needsVersion3(kind, id, this.batch);
    const tree = this.tree(v3, kind);
    const index = tree.ids.get(id);
    if (index === undefined) throw new ProofUnavailable('not-found', `${kind} ${id} is not in batch ${this.batch.body.seq}`);
    const path = auditPathOf(tree.leaves.length, index, (start, end) => this.node(tree, start, end));
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    this.cid ??= batchCidText(v3.envelope);
    return {
      format: PROOF_FORMAT,
      device: deviceIdFromPublicKey(v3.header.dev),
      kind,
      hdr: hex(v3.headerBytes),
      sig: hex(v3.signature),
      index,
      leaf: hex(tree.leaves[index]!),
      path: path.map(hex),
      cid: this.cid,
    };
  }

  private tree(v3: SignedBatchV3 & { data: BatchDataV3 }, kind: ProofKind) {
    let t = this.trees.get(kind);
    if (!t) {
      const list = v3.data[LIST[kind]] as readonly { i: number }[];
      const leaves = list.map((x) => canonicalEncode(x));
      t = { leaves, hashes: leaves.map(leafHash), ids: new Map(list.map((x, k) => [x.i, k])), nodes: new Map() };
      this.trees.set(kind, t);
    }
    return t;
  }

  /** MTH of leaves [start, end), memoised (RFC 6962 §2.1). */
  private node(tree: { hashes: Uint8Array[]; nodes: Map<number, Uint8Array> }, start: number, end: number): Uint8Array {
    if (end - start === 1) return tree.hashes[start]!;
    const key = start * 20_000 + end;
    const hit = tree.nodes.get(key);
    if (hit) return hit;
    let k = 1;
    while (k * 2 < end - start) k *= 2;
    const h = sha256(NODE, this.node(tree, start, start + k), this.node(tree, start + k, end));
    tree.nodes.set(key, h);
    return h;
  }
}

const NODE = Uint8Array.of(0x01);

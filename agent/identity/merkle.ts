import * as crypto from 'node:crypto';

// Merkle tree hash of RFC 6962 §2.1 (Certificate Transparency) with sha256: leaves and inner
// nodes are domain-separated (0x00 / 0x01 prefixes), and a tree of n leaves splits at the
// largest power of two below n, so no leaf is ever duplicated to fill a level.

const LEAF = Buffer.of(0x00);
const NODE = Buffer.of(0x01);

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = crypto.createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

// crypto.hash (Node >= 20.12) hashes in one call without a Hash object: about three times faster
// than createHash for the short inputs of a tree, where a batch makes ~2n of them (the profile in
// docs/performance.md). The prefix and the input are copied into one scratch buffer first.
const oneShot = (crypto as { hash?: (alg: string, data: Uint8Array, enc: 'buffer') => Buffer }).hash;
let scratch = Buffer.allocUnsafe(1024);

function prefixedHash(prefix: number, a: Uint8Array, b?: Uint8Array): Uint8Array {
  if (!oneShot) return b ? sha256(NODE, a, b) : sha256(LEAF, a);
  const n = 1 + a.length + (b?.length ?? 0);
  if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2));
  scratch[0] = prefix;
  scratch.set(a, 1);
  if (b) scratch.set(b, 1 + a.length);
  return oneShot('sha256', scratch.subarray(0, n), 'buffer');
}

export function leafHash(leaf: Uint8Array): Uint8Array {
  return new Uint8Array(prefixedHash(0x00, leaf));
}

function nodeHash(left: Uint8Array, right: Uint8Array): Uint8Array {
  return prefixedHash(0x01, left, right);
}

export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  const hashes = leaves.map((leaf) => prefixedHash(0x00, leaf));
  return new Uint8Array(rootOfHashes(hashes, 0, hashes.length));
}

/**
 * The leaf hashes of `count` leaves that lie back to back in `bytes` (leaf k ends at `ends[k]`),
 * written into `out` at 32 bytes each: what merkleRoot computes first, kept by the leaf cache
 * (pipeline/leaf-cache.ts) so a cut hashes only the inner nodes.
 */
export function leafHashesInto(bytes: Uint8Array, ends: Uint32Array, out: Uint8Array): void {
  const src = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let from = 0;
  for (let k = 0; k < ends.length; k++) {
    const to = ends[k]!;
    const n = 1 + to - from;
    if (scratch.length < n) scratch = Buffer.allocUnsafe(Math.max(n, scratch.length * 2));
    scratch[0] = 0x00;
    src.copy(scratch, 1, from, to);
    out.set(oneShot ? oneShot('sha256', scratch.subarray(0, n), 'buffer') : sha256(scratch.subarray(0, n)), 32 * k);
    from = to;
  }
}

/** merkleRoot of the leaves whose leaf hashes lie back to back in `hashes` (32 bytes each). */
export function merkleRootOfLeafHashes(hashes: Uint8Array, count: number): Uint8Array {
  if (count === 0) return sha256();
  if (hashes.length !== 32 * count) throw new Error(`${hashes.length} bytes of leaf hashes for ${count} leaves`);
  const flat = Buffer.from(hashes.buffer, hashes.byteOffset, hashes.byteLength);
  return new Uint8Array(rootOfFlat(flat, 0, count));
}

function rootOfFlat(flat: Buffer, start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return flat.subarray(32 * start, 32 * start + 32);
  if (n === 2 && oneShot) {
    // Two neighbouring leaves: their hashes are already the node's input, back to back.
    if (scratch.length < 65) scratch = Buffer.allocUnsafe(1024);
    scratch[0] = 0x01;
    flat.copy(scratch, 1, 32 * start, 32 * start + 64);
    return oneShot('sha256', scratch.subarray(0, 65), 'buffer');
  }
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(rootOfFlat(flat, start, start + k), rootOfFlat(flat, start + k, end));
}

function rootOfHashes(hashes: Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return hashes[start]!;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return nodeHash(rootOfHashes(hashes, start, start + k), rootOfHashes(hashes, start + k, end));
}

/**
 * The audit path of leaf `index` in the tree of `leaves` (RFC 6962 §2.1.1 PATH(m, D[n])): the
 * sibling hashes from the leaf up, so a verifier holding one leaf and the root can check inclusion.
 */
export function auditPath(leaves: readonly Uint8Array[], index: number): Uint8Array[] {
  if (!Number.isInteger(index) || index < 0 || index >= leaves.length) throw new Error(`leaf index ${index} is outside a tree of ${leaves.length}`);
  const hashes = leaves.map(leafHash);
  return auditPathOf(hashes.length, index, (start, end) => rootOfHashes(hashes, start, end));
}

/**
 * PATH(m, D[n]) of RFC 6962 §2.1.1 for leaf `index` of a tree of `size` leaves, from the leaf up,
 * with `node(start, end)` giving MTH(D[start:end]) (a caller may cache subtrees).
 */
export function auditPathOf(size: number, index: number, node: (start: number, end: number) => Uint8Array): Uint8Array[] {
  const path: Uint8Array[] = [];
  const walk = (m: number, start: number, end: number): void => {
    const n = end - start;
    if (n === 1) return;
    let k = 1;
    while (k * 2 < n) k *= 2;
    if (m < k) {
      walk(m, start, start + k);
      path.push(node(start + k, end));
    } else {
      walk(m - k, start + k, end);
      path.push(node(start, start + k));
    }
  };
  walk(index, 0, size);
  return path;
}

/**
 * The root an audit path leads to from a leaf hash (RFC 9162 §2.1.3.2, the verification of
 * RFC 6962's paths); null when the path has the wrong length for `index` in a tree of `size`.
 */
export function rootFromAuditPath(leafHashValue: Uint8Array, index: number, size: number, path: readonly Uint8Array[]): Uint8Array | null {
  if (!Number.isInteger(index) || !Number.isInteger(size) || index < 0 || index >= size) return null;
  let fn = index;
  let sn = size - 1;
  let r = leafHashValue;
  for (const p of path) {
    if (sn === 0) return null;
    if (fn % 2 === 1 || fn === sn) {
      r = nodeHash(p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = nodeHash(r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? new Uint8Array(r) : null;
}

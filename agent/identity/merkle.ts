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

import { createHash } from 'node:crypto';

// Merkle tree hash of RFC 6962 §2.1 (Certificate Transparency) with sha256: leaves and inner
// nodes are domain-separated (0x00 / 0x01 prefixes), and a tree of n leaves splits at the
// largest power of two below n, so no leaf is ever duplicated to fill a level.

const LEAF = Buffer.of(0x00);
const NODE = Buffer.of(0x01);

export function sha256(...parts: Uint8Array[]): Uint8Array {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
}

export function leafHash(leaf: Uint8Array): Uint8Array {
  return sha256(LEAF, leaf);
}

export function merkleRoot(leaves: readonly Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha256();
  const hashes = leaves.map(leafHash);
  return rootOfHashes(hashes, 0, hashes.length);
}

function rootOfHashes(hashes: Uint8Array[], start: number, end: number): Uint8Array {
  const n = end - start;
  if (n === 1) return hashes[start]!;
  let k = 1;
  while (k * 2 < n) k *= 2;
  return sha256(NODE, rootOfHashes(hashes, start, start + k), rootOfHashes(hashes, start + k, end));
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
      r = sha256(NODE, p, r);
      if (fn % 2 === 0) {
        while (fn % 2 === 0 && fn !== 0) {
          fn = Math.floor(fn / 2);
          sn = Math.floor(sn / 2);
        }
      }
    } else {
      r = sha256(NODE, r, p);
    }
    fn = Math.floor(fn / 2);
    sn = Math.floor(sn / 2);
  }
  return sn === 0 ? r : null;
}

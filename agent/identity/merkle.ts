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

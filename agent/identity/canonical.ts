import { randomBytes } from 'node:crypto';
import { decode, encode, rfc8949EncodeOptions } from 'cborg';
import { fastCanonicalEncode, fastCanonicalEncodeAll } from './fast-canonical.js';
import { arrayHeader } from './reading-leaf.js';

/**
 * Deterministically encoded CBOR (RFC 8949 §4.2.1): shortest integer and float forms,
 * definite lengths, map keys sorted by their encoded bytes. Every signed structure in the
 * wire format (docs/wire-format.md) is encoded with this, so any conforming CBOR library
 * can reproduce the bytes.
 */
export function canonicalEncode(value: unknown): Uint8Array {
  return fastCanonicalEncode(value) ?? cborgCanonicalEncode(value);
}

/** canonicalEncode of each value, the results sharing one allocation (a batch's Merkle leaves). */
export function canonicalEncodeAll(values: readonly unknown[]): Uint8Array[] {
  return fastCanonicalEncodeAll(values) ?? values.map(cborgCanonicalEncode);
}

/**
 * canonicalEncode({...map, [key]: items}) for items already encoded (`parts`: their encodings
 * back to back, `count` of them), without decoding or encoding them again: an array is its
 * header followed by its items (RFC 8949 §3.1). The map is encoded with a random 32-byte
 * placeholder under `key`, which is then replaced by the array: map key order depends on the
 * keys only, so the bytes are exactly canonicalEncode of the whole. A batch's readings are its
 * Merkle leaves, so the body (or version 3 data) reuses them (identity/batch-format.ts, batch-v3.ts).
 */
export function canonicalEncodeWithArray(map: Record<string, unknown>, key: string, count: number, parts: readonly Uint8Array[]): Uint8Array {
  const placeholder = randomBytes(32);
  const skeleton = canonicalEncode({ ...map, [key]: placeholder });
  const keyBytes = canonicalEncode(key);
  const marker = Buffer.concat([keyBytes, Uint8Array.of(0x58, 0x20), placeholder]);
  const at = Buffer.from(skeleton.buffer, skeleton.byteOffset, skeleton.byteLength).indexOf(marker);
  // The placeholder is in the skeleton by construction; a random 32 bytes found elsewhere first is not a case to handle.
  if (at < 0) throw new Error(`canonicalEncodeWithArray: the placeholder for ${key} was not found (a bug)`);
  return Buffer.concat([skeleton.subarray(0, at + keyBytes.length), arrayHeader(count), ...parts, skeleton.subarray(at + marker.length)]);
}

/** The reference encoding (cborg), which fast-canonical.ts must match byte for byte; also its fallback. */
export function cborgCanonicalEncode(value: unknown): Uint8Array {
  return encode(value, rfc8949EncodeOptions);
}

/**
 * Decodes CBOR and insists that the input was canonical: re-encoding must give the same
 * bytes. That closes malleability: one logical batch has exactly one byte form, one hash.
 */
export function canonicalDecode(bytes: Uint8Array, what: string): unknown {
  let value: unknown;
  try {
    value = decode(bytes, { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false, allowIndefinite: false, useMaps: false });
  } catch (err) {
    throw new Error(`${what}: not valid CBOR (${(err as Error).message})`);
  }
  const again = canonicalEncode(value);
  if (!Buffer.from(again).equals(Buffer.from(bytes))) throw new Error(`${what}: CBOR is not in deterministic encoding (RFC 8949 §4.2.1)`);
  return value;
}

import { decode, encode, rfc8949EncodeOptions } from 'cborg';
import { fastCanonicalEncode, fastCanonicalEncodeAll } from './fast-canonical.js';

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

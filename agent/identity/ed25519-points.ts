/**
 * Ed25519 point encodings that libsodium refuses as a public key or as a signature's R
 * (`ge25519_has_small_order` and `ge25519_is_canonical` in its ed25519 ref10 code), refused here
 * the same way. With a small-order `dev` (e.g. the identity point 01 00…00) and the signature
 * R = identity, S = 0, every message "verifies" under RFC 8032's equation: such a key proves
 * nothing, so a key or R of small order never verifies (docs/wire-format.md §5).
 */

const hexBytes = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

/** The 7 encodings of libsodium's blocklist, compared with the sign bit (bit 255) cleared. */
const SMALL_ORDER_BLOCKLIST: readonly Uint8Array[] = [
  '0000000000000000000000000000000000000000000000000000000000000000', // y = 0: order 4
  '0100000000000000000000000000000000000000000000000000000000000000', // y = 1: the identity, order 1
  '26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', // order 8
  'c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a', // order 8
  'ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p - 1: order 2
  'edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p (non-canonical 0): order 4
  'eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f', // y = p + 1 (non-canonical 1): order 1
].map(hexBytes);

/** y ≥ p = 2^255 − 19 (RFC 8032 §5.1.3 step 1: such an encoding is invalid). */
function isNonCanonicalY(k: Uint8Array): boolean {
  if ((k[31]! & 0x7f) !== 0x7f) return false;
  for (let i = 30; i > 0; i--) if (k[i] !== 0xff) return false;
  return k[0]! >= 0xed;
}

function isBlocklisted(k: Uint8Array): boolean {
  return SMALL_ORDER_BLOCKLIST.some((bad) => {
    for (let i = 0; i < 31; i++) if (k[i] !== bad[i]) return false;
    return (k[31]! & 0x7f) === bad[31];
  });
}

/** Why a 32-byte Ed25519 point encoding is refused, or undefined when it is acceptable. */
export function weakPointReason(k: Uint8Array): string | undefined {
  if (k.length !== 32) return `an Ed25519 point is 32 bytes, not ${k.length}`;
  if (isNonCanonicalY(k)) return 'not a canonical encoding (y is not below 2^255 - 19)';
  if (isBlocklisted(k)) return 'a point of small order (libsodium blocklist): it would verify forged signatures';
  return undefined;
}

/** Every encoding refused by weakPointReason's blocklist: the 7 listed, each with both sign bits (vectors). */
export function smallOrderEncodings(): Uint8Array[] {
  return SMALL_ORDER_BLOCKLIST.flatMap((k) => {
    const signed = Uint8Array.from(k);
    signed[31] = signed[31]! | 0x80;
    return [Uint8Array.from(k), signed];
  });
}

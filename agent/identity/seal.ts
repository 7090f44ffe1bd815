import { randomBytes } from 'node:crypto';
import ed2curve from 'ed2curve';
import nacl from 'tweetnacl';

/**
 * Sealing a version-3 batch's data to the network's key (docs/wire-format.md §12.6): NaCl
 * crypto_box (X25519, XSalsa20-Poly1305, tweetnacl) from a fresh ephemeral key pair to the X25519
 * form of the recipient's Ed25519 key (ed2curve, libsodium's crypto_sign_ed25519_pk_to_curve25519).
 */

export const SEAL_ALG = 'x25519-xsalsa20-poly1305';

export interface SealInfo {
  alg: typeof SEAL_ALG;
  /** The recipient's Ed25519 public key. */
  to: Uint8Array;
  /** Ephemeral X25519 public key. */
  epk: Uint8Array;
  nonce: Uint8Array;
}

/** The recipient's box key, or an error naming the key when its bytes are not a curve point. */
export function recipientBoxKey(to: Uint8Array): Uint8Array {
  const key = to.length === 32 ? ed2curve.convertPublicKey(to) : null;
  if (!key) throw new Error(`encrypt_to key ${Buffer.from(to).toString('hex')} is not a valid Ed25519 public key`);
  return key;
}

/** `fixed` makes the ephemeral key and nonce given instead of random: for test vectors only. */
export function seal(plaintext: Uint8Array, to: Uint8Array, fixed?: { ephemeralSecret: Uint8Array; nonce: Uint8Array }): { enc: SealInfo; sealed: Uint8Array } {
  const recipient = recipientBoxKey(to);
  const ephemeral = nacl.box.keyPair.fromSecretKey(fixed?.ephemeralSecret ?? new Uint8Array(randomBytes(32)));
  const nonce = fixed?.nonce ?? new Uint8Array(randomBytes(nacl.box.nonceLength));
  const sealed = nacl.box(plaintext, nonce, recipient, ephemeral.secretKey);
  return { enc: { alg: SEAL_ALG, to: Uint8Array.from(to), epk: ephemeral.publicKey, nonce }, sealed };
}

/** The plaintext, or null when the box does not open with this secret key (wrong key or tampered bytes). */
export function open(sealed: Uint8Array, enc: SealInfo, boxSecretKey: Uint8Array): Uint8Array | null {
  return nacl.box.open(sealed, enc.nonce, enc.epk, boxSecretKey);
}

// ed2curve (dchest, the tweetnacl author) ships no types; these are the two functions we use.
declare module 'ed2curve' {
  /** Ed25519 public key (32 bytes) to its X25519 form; null when the bytes are not a valid point. */
  export function convertPublicKey(pk: Uint8Array): Uint8Array | null;
  /** Ed25519 secret key (64 bytes, seed || public) to the X25519 secret key. */
  export function convertSecretKey(sk: Uint8Array): Uint8Array;
}

import bs58 from 'bs58';
import { weakPointReason } from './ed25519-points.js';

// did:key (W3C CCG did:key method): multibase base58btc ('z') of the multicodec
// ed25519-pub prefix (0xed 0x01) followed by the 32-byte public key.
const ED25519_PUB_MULTICODEC = Uint8Array.of(0xed, 0x01);
const DID_KEY_PREFIX = 'did:key:z';

export function deviceIdFromPublicKey(publicKey: Uint8Array): string {
  if (publicKey.length !== 32) throw new Error(`ed25519 public key must be 32 bytes, got ${publicKey.length}`);
  const bytes = new Uint8Array(34);
  bytes.set(ED25519_PUB_MULTICODEC, 0);
  bytes.set(publicKey, 2);
  return DID_KEY_PREFIX + bs58.encode(bytes);
}

/** Parses a did:key or a 64-digit hex ed25519 public key; throws with the reason otherwise. */
export function publicKeyFromDeviceId(id: string): Uint8Array {
  const text = id.trim();
  if (/^[0-9a-fA-F]{64}$/.test(text)) return usableKey(Uint8Array.from(Buffer.from(text, 'hex')), text);
  if (!text.startsWith(DID_KEY_PREFIX)) {
    throw new Error(`not a did:key ed25519 id or 64 hex digits: "${text.slice(0, 80)}"`);
  }
  let bytes: Uint8Array;
  try {
    bytes = bs58.decode(text.slice(DID_KEY_PREFIX.length));
  } catch {
    throw new Error(`did:key is not valid base58btc: "${text.slice(0, 80)}"`);
  }
  if (bytes.length !== 34 || bytes[0] !== 0xed || bytes[1] !== 0x01) {
    throw new Error('did:key does not hold an ed25519 public key (multicodec 0xed01, 32 bytes)');
  }
  return usableKey(bytes.slice(2), text);
}

/** A key of small order or non-canonical encoding verifies forgeries (wire-format.md §5): refused wherever a key is read. */
function usableKey(key: Uint8Array, text: string): Uint8Array {
  const weak = weakPointReason(key);
  if (weak) throw new Error(`${text.slice(0, 80)} is not a usable Ed25519 public key: ${weak}`);
  return key;
}

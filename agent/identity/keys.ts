import { createHmac, createPrivateKey, createPublicKey, randomBytes, sign, verify, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, openSync, closeSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
import ed2curve from 'ed2curve';
import nacl from 'tweetnacl';
import { dirname } from 'node:path';
import { existsOrPermission, isPermissionError, permissionError } from '../util/file-access.js';
import { AgentError } from '../errors.js';
import { deviceIdFromPublicKey } from './device-id.js';
import { weakPointReason } from './ed25519-points.js';

// DER prefixes of RFC 8410 structures for ed25519: PKCS#8 private key (seed follows) and
// SubjectPublicKeyInfo (public key follows). The key file is plain PKCS#8 PEM, so
// `openssl pkey -in device.key -text` reads it too.
const PKCS8_ED25519_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/**
 * An ed25519 identity. Keys are made with tweetnacl; signing and verifying use node:crypto
 * (about 100x faster than tweetnacl here, byte-identical signatures: ed25519 is deterministic).
 */
export class Identity {
  readonly publicKey: Uint8Array;
  readonly deviceId: string;
  private readonly privateKey: KeyObject;
  private readonly seed: Uint8Array;

  private constructor(seed: Uint8Array) {
    this.seed = seed;
    this.privateKey = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519_PREFIX, seed]), format: 'der', type: 'pkcs8' });
    // The public key from node:crypto: the same 32 bytes as tweetnacl's keyPair.fromSeed, whose
    // JavaScript scalar multiplication cost 20-40 ms of every cold start (not yet compiled then).
    const spki = createPublicKey(this.privateKey).export({ format: 'der', type: 'spki' });
    this.publicKey = new Uint8Array(spki.subarray(SPKI_ED25519_PREFIX.length));
    this.deviceId = deviceIdFromPublicKey(this.publicKey);
  }

  static generate(): Identity {
    return new Identity(nacl.sign.keyPair.fromSeed(new Uint8Array(randomBytes(32))).secretKey.slice(0, 32));
  }

  static fromSeed(seed: Uint8Array): Identity {
    if (seed.length !== 32) throw new AgentError('KEY_INVALID', `ed25519 seed must be 32 bytes, got ${seed.length}`);
    return new Identity(Uint8Array.from(seed));
  }

  sign(message: Uint8Array): Uint8Array {
    return new Uint8Array(sign(null, message, this.privateKey));
  }

  /**
   * The X25519 secret key of this identity (RFC 7748 form of the Ed25519 key), to open batches
   * sealed to its did:key (docs/wire-format.md §12.6). Made on demand, never stored.
   */
  boxSecretKey(): Uint8Array {
    return ed2curve.convertSecretKey(nacl.sign.keyPair.fromSeed(this.seed).secretKey);
  }

  /**
   * The 16-byte salt of element `id` of kind `what` in a sealed batch (docs/wire-format.md §12.6):
   * HMAC-SHA256 under a key derived from the device seed, so only the device can make it and it can
   * re-derive it to check its own sealed batches against their roots.
   */
  saltFor(what: 'r' | 'vd' | 'ev', id: number): Uint8Array {
    const key = createHmac('sha256', 'edge-agent/salt/1').update(this.seed).digest();
    return new Uint8Array(createHmac('sha256', key).update(`${what}:${id}`).digest().subarray(0, 16));
  }

  /** The slow reference path, kept to prove the fast path agrees with it. */
  signWithTweetnacl(message: Uint8Array): Uint8Array {
    return nacl.sign.detached(message, nacl.sign.keyPair.fromSeed(this.seed).secretKey);
  }

  toPem(): string {
    const der = Buffer.concat([PKCS8_ED25519_PREFIX, this.seed]);
    const body = der.toString('base64').match(/.{1,64}/g)!.join('\n');
    return `-----BEGIN PRIVATE KEY-----\n${body}\n-----END PRIVATE KEY-----\n`;
  }

  static fromPem(pem: string, file = 'key'): Identity {
    let der: Buffer;
    try {
      der = createPrivateKey({ key: pem, format: 'pem' }).export({ format: 'der', type: 'pkcs8' });
    } catch (err) {
      throw new AgentError('KEY_INVALID', `${file}: not a PEM private key`, { cause: err });
    }
    if (der.length !== 48 || !der.subarray(0, 16).equals(PKCS8_ED25519_PREFIX)) {
      throw new AgentError('KEY_INVALID', `${file}: not an ed25519 private key`);
    }
    return new Identity(new Uint8Array(der.subarray(16)));
  }
}

const publicKeyCache = new Map<string, KeyObject>();

/**
 * RFC 8032 §5.1.7 verification (node:crypto, which also requires S < L), and, as libsodium, a
 * public key or R of small order or in a non-canonical encoding never verifies (§5).
 */
export function verifySignature(publicKey: Uint8Array, message: Uint8Array, signature: Uint8Array): boolean {
  if (publicKey.length !== 32 || signature.length !== 64) return false;
  if (weakPointReason(publicKey) !== undefined || weakPointReason(signature.subarray(0, 32)) !== undefined) return false;
  const cacheKey = Buffer.from(publicKey).toString('hex');
  let key = publicKeyCache.get(cacheKey);
  if (!key) {
    key = createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, publicKey]), format: 'der', type: 'spki' });
    if (publicKeyCache.size > 10_000) publicKeyCache.clear();
    publicKeyCache.set(cacheKey, key);
  }
  try {
    return verify(null, message, key, signature);
  } catch {
    // node:crypto throws on keys that are not valid curve points; that is a failed verification.
    return false;
  }
}

/** Writes a new key file with mode 0600; refuses to replace an existing one unless `force`. */
export function writeKeyFile(path: string, identity: Identity, force: boolean): void {
  if (existsSync(path) && !force) {
    throw new AgentError('KEY_EXISTS', `${path} already exists; refusing to replace the device identity (use --force)`, { exitCode: 2 });
  }
  const tmp = `${path}.tmp-${process.pid}`;
  const fd = openSync(tmp, 'w', 0o600);
  try {
    writeSync(fd, identity.toPem());
  } finally {
    closeSync(fd);
  }
  chmodSync(tmp, 0o600);
  renameSync(tmp, path);
}

/** Loads a key file; refuses one that group or others can read (it is the device's identity). */
export function readKeyFile(path: string): Identity {
  if (!existsOrPermission(path, dirname(path))) throw new AgentError('KEY_NOT_FOUND', `key file ${path} not found (run edge-agent init)`);
  const mode = statSync(path).mode & 0o777;
  if (mode & 0o077) {
    throw new AgentError('KEY_PERMISSIONS', `key file ${path} has mode ${mode.toString(8)}; it must not be readable by group or others (chmod 600 ${path})`);
  }
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (err) {
    if (isPermissionError(err)) throw permissionError(path, 'read', dirname(path), err);
    throw err;
  }
  return Identity.fromPem(pem, path);
}

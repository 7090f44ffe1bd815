import { z } from 'zod';
import { canonicalDecode, canonicalEncode } from './canonical.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from './device-id.js';
import type { Identity } from './keys.js';
import { verifySignature } from './keys.js';
import { verifyProof, type Proof } from './proof.js';

/**
 * A data product (docs/wire-format.md §12.14): the readings of one sensor over a time range, each
 * with its own proof (§12.8), and a manifest signed by the device that names every (batch seq,
 * leaf index) it holds for that sensor and range. A buyer checks each proof against the signed
 * batch headers (an altered reading fails its audit path) and that the proofs are exactly the
 * manifest's list (a reading left out, added or moved fails), without any other batch content.
 */
export const PRODUCT_FORMAT = 'edge-agent/product/1';
/** Readings in one product: 100,000 proofs are about 150 MB of JSON. */
export const PRODUCT_MAX_READINGS = 100_000;

const uint = z.number().int().nonnegative().refine(Number.isSafeInteger, 'must be a safe integer');
const int = z.number().int().refine(Number.isSafeInteger, 'must be a safe integer');
const byteString = z.custom<Uint8Array>((v) => v instanceof Uint8Array, 'must be a byte string');

// §12.14: the signed manifest (deterministic CBOR, signed with the device key; its fmt keeps it
// from ever passing as a batch header, body or receipt, §5).
const manifestSchema = z
  .object({
    fmt: z.literal(PRODUCT_FORMAT),
    dev: byteString.refine((b) => b.length === 32, 'must be 32 bytes'),
    s: z.string().min(1).max(256),
    from: int,
    to: int,
    at: int,
    items: z
      .array(z.tuple([uint.refine((n) => n >= 1, 'seq starts at 1'), uint.refine((n) => n < 10_000, 'leaf index below 10,000')]))
      .max(PRODUCT_MAX_READINGS)
      .refine((xs) => xs.every((x, k) => k === 0 || x[0] > xs[k - 1]![0] || (x[0] === xs[k - 1]![0] && x[1] > xs[k - 1]![1])), 'items must strictly increase by (seq, index)'),
  })
  .strict()
  .refine((m) => m.from <= m.to, { message: 'from must not be after to', path: ['to'] });
export type ProductManifest = z.infer<typeof manifestSchema>;

const hexText = (max: number) => z.string().regex(/^([0-9a-f]{2})*$/, 'must be lowercase hex').max(max * 2);
const productSchema = z
  .object({
    format: z.literal(PRODUCT_FORMAT),
    device: z.string().min(1).max(100),
    sensor: z.string().min(1).max(256),
    from: int,
    to: int,
    manifest: hexText(16 + 12 * PRODUCT_MAX_READINGS + 1024),
    manifest_sig: hexText(64),
    // Each entry is checked as a proof (§12.8) below.
    readings: z.array(z.unknown()).max(PRODUCT_MAX_READINGS),
  })
  .strict();
export type DataProduct = z.infer<typeof productSchema> & { readings: Proof[] };

/** Signs the manifest for `proofs` (each a reading proof of `sensor`, in (seq, index) order). */
export function buildProduct(identity: Identity, sensor: string, from: number, to: number, proofs: { seq: number; proof: Proof }[], now = Date.now()): DataProduct {
  const manifest: ProductManifest = { fmt: PRODUCT_FORMAT, dev: identity.publicKey, s: sensor, from, to, at: now, items: proofs.map((p) => [p.seq, p.proof.index]) };
  const bytes = canonicalEncode(manifest);
  const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
  return { format: PRODUCT_FORMAT, device: identity.deviceId, sensor, from, to, manifest: hex(bytes), manifest_sig: hex(identity.sign(bytes)), readings: proofs.map((p) => p.proof) };
}

export interface ProductCheck {
  device: string;
  sensor: string;
  from: number;
  to: number;
  readings: number;
  batches: number;
  createdAt: number;
  /**
   * When every reading carries the sensor's own sequence number `n` (§3): how many numbers are
   * missing between the lowest and highest, i.e. readings the sensor numbered that are not in the
   * product (lost before the gateway, or left out of its batches). Null when some reading has no `n`.
   */
  sensorSeqGaps: number | null;
}

export type ProductRejectReason = 'malformed' | 'bad-signature' | 'incomplete' | 'out-of-range';

/** A product that fails §12.14; proofs inside it fail with BatchVerificationError (§12.8). */
export class ProductVerificationError extends Error {
  constructor(
    readonly reason: ProductRejectReason,
    message: string,
  ) {
    super(message);
    this.name = 'ProductVerificationError';
  }
}

const fail = (reason: ProductRejectReason, detail: string) => new ProductVerificationError(reason, detail);

/**
 * Checks a data product offline; throws ProductVerificationError (or, for a proof inside it,
 * BatchVerificationError) with reason `malformed`,
 * `bad-signature` (the manifest or a header), `bad-merkle-root` (an altered reading),
 * `incomplete` (a reading of the manifest is missing, or one is there that it does not name) or
 * `out-of-range` (a reading of another sensor or outside the range).
 */
export function verifyProduct(input: unknown, deviceKey?: Uint8Array): ProductCheck {
  const parsed = productSchema.safeParse(input);
  if (!parsed.success) {
    const first = parsed.error.issues[0]!;
    throw fail('malformed', `product: field ${first.path.join('.') || '(root)'} ${first.message}`);
  }
  const p = parsed.data;
  let key: Uint8Array;
  try {
    key = publicKeyFromDeviceId(p.device);
  } catch (err) {
    throw fail('malformed', `product: device: ${(err as Error).message}`);
  }
  if (deviceKey && !Buffer.from(deviceKey).equals(Buffer.from(key))) throw fail('bad-signature', `product names device ${p.device}, not the expected key ${deviceIdFromPublicKey(deviceKey)}`);
  const manifestBytes = new Uint8Array(Buffer.from(p.manifest, 'hex'));
  let decoded: unknown;
  try {
    decoded = canonicalDecode(manifestBytes, 'manifest');
  } catch (err) {
    throw fail('malformed', (err as Error).message);
  }
  const m = manifestSchema.safeParse(decoded);
  if (!m.success) throw fail('malformed', `manifest: field ${m.error.issues[0]!.path.join('.') || '(root)'} ${m.error.issues[0]!.message}`);
  const manifest = m.data;
  if (!Buffer.from(manifest.dev).equals(Buffer.from(key))) throw fail('bad-signature', 'the manifest is for another device than the product names');
  if (!verifySignature(key, manifestBytes, new Uint8Array(Buffer.from(p.manifest_sig, 'hex')))) throw fail('bad-signature', 'the manifest signature does not verify under the device key');
  if (manifest.s !== p.sensor || manifest.from !== p.from || manifest.to !== p.to) throw fail('malformed', 'sensor, from or to differ from the signed manifest');
  if (p.readings.length !== manifest.items.length) {
    throw fail('incomplete', `the manifest names ${manifest.items.length} readings of ${p.sensor} in the range, the product holds ${p.readings.length}`);
  }
  const headers = new Map<number, string>();
  const sensorSeqs: number[] = [];
  let allNumbered = true;
  p.readings.forEach((raw, k) => {
    const [seq, index] = manifest.items[k]!;
    const where = `reading ${k + 1} of ${p.readings.length}`;
    const proof = raw as Proof;
    const { header, element } = verifyProof(raw, key);
    if (proof.kind !== 'reading') throw fail('malformed', `${where} is a ${proof.kind} proof`);
    if (header.seq !== seq || proof.index !== index) {
      throw fail('incomplete', `${where} is batch ${header.seq} leaf ${proof.index}, but the manifest names batch ${seq} leaf ${index} there (a reading was left out, added or moved)`);
    }
    // One header per seq: a device never signs two headers with the same seq (§4.3).
    const seen = headers.get(seq);
    if (seen !== undefined && seen !== proof.hdr) throw fail('bad-signature', `${where}: two different headers for batch ${seq}`);
    headers.set(seq, proof.hdr);
    const r = element as { s: string; t: number; i: number; n?: number };
    if (r.n === undefined) allNumbered = false;
    else sensorSeqs.push(r.n);
    if (r.s !== p.sensor) throw fail('out-of-range', `${where} (reading id ${r.i}) is of sensor ${r.s}, not ${p.sensor}`);
    if (r.t < p.from || r.t > p.to) throw fail('out-of-range', `${where} (reading id ${r.i}) has t ${r.t}, outside ${p.from}..${p.to}`);
  });
  return {
    device: p.device,
    sensor: p.sensor,
    from: p.from,
    to: p.to,
    readings: p.readings.length,
    batches: headers.size,
    createdAt: manifest.at,
    sensorSeqGaps: allNumbered && sensorSeqs.length > 0 ? seqGaps(sensorSeqs) : null,
  };
}

/** Numbers missing between the lowest and highest of `seqs` (each counted once; repeats ignored). */
function seqGaps(seqs: number[]): number {
  const distinct = [...new Set(seqs)].sort((a, b) => a - b);
  return distinct[distinct.length - 1]! - distinct[0]! + 1 - distinct.length;
}

/** True for a parsed JSON object that says it is a data product. */
export function isProduct(value: unknown): boolean {
  return typeof value === 'object' && value !== null && (value as { format?: unknown }).format === PRODUCT_FORMAT;
}

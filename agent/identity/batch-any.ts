import { verifyBatchEnvelope, type BatchBody, type SignedBatch } from './batch-format.js';
import { buildBatchV3, buildBatchV3FromLeaves, isV3Envelope, V3_LIMITS, verifyBatchV3Envelope, type BatchContentV3, type SignedBatchV3 } from './batch-v3.js';
import { MAX_BODY_BYTES, MAX_ENVELOPE_BYTES } from './wire-limits.js';
import type { BatchEvent } from './event-format.js';

/**
 * One view of a verified batch of any version (docs/wire-format.md §11, §12), so the chain, the
 * receiver and `verify` handle versions 1-3 alike. For version 3, `body` presents the header's
 * fields with the data's arrays (`bodyBytes` are the signed header bytes: what `hash` covers);
 * `events` and `sealed` are version 3's own.
 */
export interface AnyBatch extends SignedBatch {
  version: 1 | 2 | 3;
  events: BatchEvent[];
  /** Sealed to the network key (§12.6). */
  sealed: boolean;
  /** False for a sealed batch verified without the recipient key: only the header was checked. */
  opened: boolean;
  v3?: SignedBatchV3;
}

export function fromV3(b: SignedBatchV3): AnyBatch {
  const h = b.header;
  const d = b.data;
  // Data built from leaves decodes its readings only when read (identity/reading-leaf.ts): so does the body.
  const lazyReadings = d !== undefined && Object.getOwnPropertyDescriptor(d, 'r')?.get !== undefined;
  const body = {
    fmt: h.fmt,
    dev: h.dev,
    seq: h.seq,
    prev: h.prev,
    boot: h.boot,
    sync: h.sync,
    created: h.created,
    t0: h.t0,
    t1: h.t1,
    n: h.n,
    root: h.root,
    r: lazyReadings ? [] : (d?.r ?? []),
    ...(d && d.vd.length > 0 ? { m: h.m, vd: d.vd, vroot: h.vroot } : {}),
    ...(d?.drops ? { drops: d.drops } : {}),
  } as unknown as BatchBody;
  if (lazyReadings) Object.defineProperty(body, 'r', { get: () => d.r, enumerable: true, configurable: true });
  return { version: 3, body, bodyBytes: b.headerBytes, signature: b.signature, hash: b.hash, envelope: b.envelope, events: d?.ev ?? [], sealed: b.sealed, opened: d !== undefined, v3: b };
}

function fromV12(b: SignedBatch): AnyBatch {
  return { ...b, version: b.body.fmt === 'edge-agent/batch/1' ? 1 : 2, events: [], sealed: false, opened: true };
}

/** Verifies an envelope of any version (§6.1 or §12.9); `openWith` opens sealed batches (Identity.boxSecretKey()). */
export function verifyAnyBatchEnvelope(envelope: Uint8Array, options: { openWith?: Uint8Array } = {}): AnyBatch {
  return isV3Envelope(envelope) ? fromV3(verifyBatchV3Envelope(envelope, options)) : fromV12(verifyBatchEnvelope(envelope));
}

export function buildAnyBatchV3(...args: Parameters<typeof buildBatchV3>): AnyBatch {
  return fromV3(buildBatchV3(...args));
}

export function buildAnyBatchV3FromLeaves(...args: Parameters<typeof buildBatchV3FromLeaves>): AnyBatch {
  return fromV3(buildBatchV3FromLeaves(...args));
}
export type { BatchContentV3 };

/**
 * Whether a verifier takes a batch of this size: §6.3 (versions 1 and 2: envelope and body) and
 * §12.9 (version 3: envelope and data). A batch of `batch.max_readings` readings with long sensor
 * ids and units can pass them, so the batch stage cuts fewer readings rather than sign one that
 * every receiver refuses for good (which would block the chain behind it).
 */
export function fitsWireLimits(b: AnyBatch): boolean {
  if (b.version === 3) return b.envelope.length <= V3_LIMITS.envelopeBytes && (b.v3?.dataBytes?.length ?? 0) <= V3_LIMITS.dataBytes;
  return b.envelope.length <= MAX_ENVELOPE_BYTES && b.bodyBytes.length <= MAX_BODY_BYTES;
}

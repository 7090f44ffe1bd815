import type { CborLimits } from './bounded-cbor.js';

/**
 * The hard limits of docs/wire-format.md §6.3, enforced while decoding (bounded-cbor.ts), before
 * any object is built. The counts are at least what the reference agent can produce
 * (`batch.max_readings` is at most 10,000, and a batch takes at most as many verdicts); the byte
 * limits it keeps by cutting fewer readings when a batch would pass them (wire-format.md §12.12).
 */
export const MAX_ENVELOPE_BYTES = 8 * 1024 * 1024;
/** Envelope overhead is 81 bytes (map, two keys, 64-byte sig, a 5-byte body header); 128 leaves room. */
export const MAX_BODY_BYTES = MAX_ENVELOPE_BYTES - 128;
export const MAX_READINGS = 10_000;
export const MAX_VERDICTS = 10_000;
export const MAX_MODELS = 64;
export const MAX_DROPS = 100_000;
export const MAX_OUTPUTS = 32;
/** body map, then `r`/`vd`/`m`/`drops`, then one reading/verdict/model/drop, then a verdict's `o`. */
export const MAX_BODY_DEPTH = 4;
/** 256 UTF-16 code units (§3's longest string) take at most 768 bytes of UTF-8. */
export const MAX_TEXT_BYTES = 768;
/** All array items and map entries of one body together; a full batch of §6.3 has about 860,000. */
export const MAX_BODY_ITEMS = 1_000_000;
/** No map of this format has more keys (the body has 16). */
export const MAX_MAP_KEYS = 16;

export const ENVELOPE_LIMITS: CborLimits = {
  maxBytes: MAX_ENVELOPE_BYTES,
  maxDepth: 1,
  maxTextBytes: 8,
  maxByteStringBytes: 64,
  byteStringBytesByPath: { body: MAX_BODY_BYTES },
  maxLength: 2,
  maxItems: 2,
};

export const BODY_LIMITS: CborLimits = {
  maxBytes: MAX_BODY_BYTES,
  maxDepth: MAX_BODY_DEPTH,
  maxTextBytes: MAX_TEXT_BYTES,
  maxByteStringBytes: 32,
  maxLength: MAX_MAP_KEYS,
  lengthByPath: { r: MAX_READINGS, vd: MAX_VERDICTS, m: MAX_MODELS, drops: MAX_DROPS, 'vd.*.o': MAX_OUTPUTS },
  maxItems: MAX_BODY_ITEMS,
  spansOf: ['r', 'vd'],
};

/** Receipts (§8, §12.10) are small: at most ten keys, 32-byte keys and hashes, a CID of about 60 characters. */
export const MAX_RECEIPT_BYTES = 1024;
export const RECEIPT_ENVELOPE_LIMITS: CborLimits = { maxBytes: MAX_RECEIPT_BYTES, maxDepth: 1, maxTextBytes: 8, maxByteStringBytes: 1024, maxLength: 2, maxItems: 2 };
export const RECEIPT_BODY_LIMITS: CborLimits = { maxBytes: MAX_RECEIPT_BYTES, maxDepth: 1, maxTextBytes: 128, maxByteStringBytes: 32, maxLength: 10, maxItems: 10 };

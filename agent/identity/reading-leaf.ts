import { decode } from 'cborg';
import type { StoredReading, TimeSource } from '../types.js';
import { canonicalWriter as w } from './fast-canonical.js';

/**
 * The readings of a batch as their Merkle leaves, encoded when they were committed
 * (pipeline/leaf-cache.ts), so a batch cut is concatenation and a Merkle tree over stored hashes.
 */
export interface ReadingLeaves {
  count: number;
  /** The leaves back to back, in id order, split where they lie in different buffers: `r`'s items as they appear in a body or data. */
  parts: Uint8Array[];
  /** Their RFC 6962 leaf hashes (merkle.ts leafHash), 32 bytes each, in the same order. */
  leafHashes: Uint8Array;
  /** Smallest and largest `t` (Infinity / -Infinity when count is 0). */
  t0: number;
  t1: number;
  /** Some reading carries quality flags: the batch needs version 3 (wire-format.md §12.3). */
  flagged: boolean;
}

const TIME_SOURCE_CODE: Record<TimeSource, number> = { sensor: 0, 'gateway-synced': 1, 'gateway-unsynced': 2 };

const key = (k: string) => Uint8Array.from(Buffer.concat([Buffer.of(0x60 + k.length), Buffer.from(k)]));
// A reading's keys as encoded text, in canonical order (RFC 8949 §4.2.1: by their encoded bytes,
// so the one-letter keys first, alphabetically, then "src").
const K_B = key('b');
const K_F = key('f');
const K_I = key('i');
const K_N = key('n');
const K_Q = key('q');
const K_S = key('s');
const K_T = key('t');
const K_U = key('u');
const K_V = key('v');
const K_SRC = key('src');

/**
 * The Merkle leaves of committed readings, byte for byte what a cut from the store encodes:
 * canonicalEncode(toBatchReading(r)) (wire-format.md §3), with `f` for a flagged reading (§12.3,
 * the version-3 leaf: a batch holding one is version 3). Optional fields follow what the store
 * keeps: `u` and `n` when not null, `f` when not 0 (store/reading-store.ts rowToReading). One
 * buffer for all; `ends[k]` is where leaf k ends. Null when a reading is not of the plain shape
 * (then it is not cached, and its batch is cut from the store).
 */
export function encodeReadingLeaves(readings: readonly StoredReading[]): { bytes: Uint8Array; ends: Uint32Array } | null {
  const ends = new Uint32Array(readings.length);
  w.reset();
  for (let k = 0; k < readings.length; k++) {
    const r = readings[k]!;
    const q = TIME_SOURCE_CODE[r.timeSource];
    const hasUnit = r.unit != null;
    const hasSeq = r.seq != null;
    const flags = r.flags || 0;
    if (
      q === undefined ||
      typeof r.id !== 'number' ||
      typeof r.boot !== 'number' ||
      typeof r.ts !== 'number' ||
      typeof r.value !== 'number' ||
      typeof flags !== 'number' ||
      typeof r.sensor !== 'string' ||
      typeof r.source !== 'string' ||
      (hasUnit && typeof r.unit !== 'string') ||
      (hasSeq && typeof r.seq !== 'number')
    ) {
      return null;
    }
    w.mapHead(7 + (flags ? 1 : 0) + (hasSeq ? 1 : 0) + (hasUnit ? 1 : 0));
    w.raw(K_B);
    w.number(r.boot);
    if (flags) {
      w.raw(K_F);
      w.number(flags);
    }
    w.raw(K_I);
    w.number(r.id);
    if (hasSeq) {
      w.raw(K_N);
      w.number(r.seq!);
    }
    w.raw(K_Q);
    w.number(q);
    w.raw(K_S);
    w.text(r.sensor);
    w.raw(K_T);
    w.number(r.ts);
    if (hasUnit) {
      w.raw(K_U);
      w.text(r.unit!);
    }
    w.raw(K_V);
    w.number(r.value);
    w.raw(K_SRC);
    w.text(r.source);
    ends[k] = w.position();
  }
  return { bytes: w.take(), ends };
}

/** The bytes of a CBOR array header for n items (RFC 8949 §3.1, shortest argument). */
export function arrayHeader(n: number): Uint8Array {
  if (n < 24) return Uint8Array.of(0x80 | n);
  if (n < 0x100) return Uint8Array.of(0x98, n);
  if (n < 0x10000) return Uint8Array.of(0x99, n >> 8, n & 0xff);
  if (n < 0x100000000) return Uint8Array.of(0x9a, n >>> 24, (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff);
  throw new Error(`an array of ${n} items is past any batch limit`);
}

/** The readings the leaves encode, as the wire format's objects (decoded only when someone asks). */
export function decodeReadingLeaves<T>(leaves: ReadingLeaves): T[] {
  return decode(Buffer.concat([arrayHeader(leaves.count), ...leaves.parts]), { useMaps: false }) as T[];
}

/**
 * Gives `target[key]` the decoded readings on first read: a batch cut from leaves builds no object
 * per reading unless something reads them (the batcher reads only counts).
 */
export function defineLazyReadings(target: object, key: string, leaves: ReadingLeaves): void {
  Object.defineProperty(target, key, {
    configurable: true,
    enumerable: true,
    get() {
      const value = decodeReadingLeaves(leaves);
      Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
      return value;
    },
  });
}

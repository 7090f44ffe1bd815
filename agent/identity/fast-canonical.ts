/**
 * Deterministic CBOR (RFC 8949 §4.2.1) written straight into one reused buffer, for the values
 * the wire format signs: plain objects with text keys, arrays, byte strings, text, booleans, null
 * and numbers. It exists for speed: cborg builds a token tree per value and sorts every map's
 * keys each time, and a CPU profile of the agent under load put cborg at 17% of all samples
 * (docs/performance.md). Here a map's key order is worked out once per shape (its key list) and
 * kept with the keys' encoded bytes.
 *
 * The bytes must be exactly cborg's with rfc8949EncodeOptions (what canonical.ts used alone
 * before): test/unit/fast-canonical.test.ts compares both on random values, and the wire-format
 * vectors (`npm run vectors`) check every version's signed bytes. Anything outside the shapes
 * above (undefined, bigint, Map, other typed arrays, classes) returns null and the caller falls
 * back to cborg.
 */

const MAJOR_UINT = 0;
const MAJOR_NEGINT = 1;
const MAJOR_BYTES = 2;
const MAJOR_TEXT = 3;
const MAJOR_ARRAY = 4;
const MAJOR_MAP = 5;

/** Map shapes remembered (key list → sorted keys and their encodings); the wire format has a few dozen. */
const MAX_SHAPES = 512;
/** Nesting beyond this is not a wire-format value: left to cborg (which has its own checks). */
const MAX_DEPTH = 64;

class Unsupported extends Error {}
const UNSUPPORTED = new Unsupported();

interface Shape {
  keys: string[];
  encodedKeys: Buffer[];
}

const shapes = new Map<string, Shape>();

let buf = Buffer.allocUnsafe(64 * 1024);
let pos = 0;
const f16View = new DataView(new ArrayBuffer(8));

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = Buffer.allocUnsafe(size);
  buf.copy(next, 0, 0, pos);
  buf = next;
}

/** A major type with its argument in the shortest form (RFC 8949 §4.2.1 preferred serialization). */
function head(major: number, n: number): void {
  ensure(9);
  const m = major << 5;
  if (n < 24) buf[pos++] = m | n;
  else if (n < 0x100) {
    buf[pos++] = m | 24;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = m | 25;
    buf.writeUInt16BE(n, pos);
    pos += 2;
  } else if (n < 0x100000000) {
    buf[pos++] = m | 26;
    buf.writeUInt32BE(n, pos);
    pos += 4;
  } else {
    buf[pos++] = m | 27;
    buf.writeUInt32BE(Math.floor(n / 0x100000000), pos);
    buf.writeUInt32BE(n >>> 0, pos + 4);
    pos += 8;
  }
}

/**
 * cborg's float16 encoding, step for step (lib/7float.js encodeFloat16): it is lossy for some
 * values, and the caller keeps the half only when it reads back equal, exactly as cborg does.
 * (For a subnormal half cborg keeps one mantissa bit and so falls back to float32 where a
 * strictly shortest encoder would not: copied, not "fixed", so the bytes stay cborg's.)
 */
function float16Bits(v: number): number {
  return float16Raw(v) & 0xffff; // cborg's DataView.setUint16 keeps the low 16 bits of its sign | ... expression
}

function float16Raw(v: number): number {
  f16View.setFloat32(0, v);
  const u = f16View.getUint32(0);
  const exponent = (u & 0x7f800000) >> 23;
  const mantissa = u & 0x7fffff;
  const sign = (u & 0x80000000) >> 16;
  if (exponent === 0xff) return 0x7c00;
  if (exponent === 0) return sign | (mantissa >> 13);
  const e = exponent - 127;
  if (e < -24) return 0;
  if (e < -14) return sign | (1 << (24 + e));
  return sign | ((e + 15) << 10) | (mantissa >> 13);
}

function readFloat16(bits: number): number {
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  let val: number;
  if (exp === 0) val = mant * 2 ** -24;
  else if (exp !== 31) val = (mant + 1024) * 2 ** (exp - 25);
  else val = mant === 0 ? Infinity : NaN;
  return bits & 0x8000 ? -val : val;
}

function float(v: number): void {
  ensure(9);
  if (Number.isNaN(v)) {
    buf[pos++] = 0xf9;
    buf.writeUInt16BE(0x7e00, pos);
    pos += 2;
    return;
  }
  if (v === Infinity || v === -Infinity) {
    buf[pos++] = 0xf9;
    buf.writeUInt16BE(v > 0 ? 0x7c00 : 0xfc00, pos);
    pos += 2;
    return;
  }
  const half = float16Bits(v);
  if (readFloat16(half) === v) {
    buf[pos++] = 0xf9;
    buf.writeUInt16BE(half, pos);
    pos += 2;
  } else if (Math.fround(v) === v) {
    buf[pos++] = 0xfa;
    buf.writeFloatBE(v, pos);
    pos += 4;
  } else {
    buf[pos++] = 0xfb;
    buf.writeDoubleBE(v, pos);
    pos += 8;
  }
}

function text(s: string): void {
  const n = Buffer.byteLength(s, 'utf8');
  head(MAJOR_TEXT, n);
  ensure(n);
  pos += buf.write(s, pos, n, 'utf8');
}

function bytes(b: Uint8Array): void {
  head(MAJOR_BYTES, b.length);
  ensure(b.length);
  buf.set(b, pos);
  pos += b.length;
}

function shapeOf(obj: Record<string, unknown>): Shape {
  const keys = Object.keys(obj);
  const id = `${keys.length}:${keys.join('\u0000')}`;
  const known = shapes.get(id);
  // The id may collide for keys holding NUL: a cached shape is used only when its keys are exactly obj's.
  if (known && known.keys.length === keys.length && known.keys.every((k) => Object.hasOwn(obj, k))) return known;
  // Keys sort by their encoded bytes (RFC 8949 §4.2.1; cborg's rfc8949MapSorter).
  const encoded = keys.map((k) => {
    const save = pos;
    text(k);
    const out = Buffer.from(buf.subarray(save, pos));
    pos = save;
    return { k, out };
  });
  encoded.sort((a, b) => Buffer.compare(a.out, b.out));
  const shape = { keys: encoded.map((e) => e.k), encodedKeys: encoded.map((e) => e.out) };
  if (shapes.size >= MAX_SHAPES) shapes.clear();
  if (!known) shapes.set(id, shape);
  return shape;
}

function item(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw UNSUPPORTED;
  switch (typeof v) {
    case 'number':
      if (Number.isSafeInteger(v)) {
        if (v >= 0) head(MAJOR_UINT, v);
        else head(MAJOR_NEGINT, -v - 1);
      } else float(v);
      return;
    case 'string':
      text(v);
      return;
    case 'boolean':
      ensure(1);
      buf[pos++] = v ? 0xf5 : 0xf4;
      return;
    case 'object':
      break;
    default:
      throw UNSUPPORTED;
  }
  if (v === null) {
    ensure(1);
    buf[pos++] = 0xf6;
    return;
  }
  if (v instanceof Uint8Array) {
    if (v.constructor !== Uint8Array && v.constructor !== Buffer) throw UNSUPPORTED;
    bytes(v);
    return;
  }
  if (Array.isArray(v)) {
    head(MAJOR_ARRAY, v.length);
    for (const x of v) item(x, depth + 1);
    return;
  }
  const proto = Object.getPrototypeOf(v) as unknown;
  if (proto !== Object.prototype && proto !== null) throw UNSUPPORTED;
  const obj = v as Record<string, unknown>;
  const shape = shapeOf(obj);
  head(MAJOR_MAP, shape.keys.length);
  for (let i = 0; i < shape.keys.length; i++) {
    const key = shape.encodedKeys[i]!;
    ensure(key.length);
    buf.set(key, pos);
    pos += key.length;
    item(obj[shape.keys[i]!], depth + 1);
  }
}

/**
 * Appends the canonical encoding of each value to one fresh buffer and returns the views, one per
 * value (the Merkle leaves of a batch: one allocation instead of one per reading); null when a
 * value is outside the supported shapes.
 */
export function fastCanonicalEncodeAll(values: readonly unknown[]): Uint8Array[] | null {
  pos = 0;
  const ends: number[] = new Array<number>(values.length);
  try {
    for (let i = 0; i < values.length; i++) {
      item(values[i], 0);
      ends[i] = pos;
    }
  } catch (err) {
    if (err === UNSUPPORTED) return null;
    throw err;
  }
  // A buffer of its own (not Buffer's shared pool), so a view's .buffer holds only these leaves.
  const out = new Uint8Array(pos);
  out.set(buf.subarray(0, pos));
  const views: Uint8Array[] = new Array<Uint8Array>(values.length);
  let from = 0;
  for (let i = 0; i < values.length; i++) {
    views[i] = out.subarray(from, ends[i]!);
    from = ends[i]!;
  }
  return views;
}

/** The canonical encoding of one value, or null when it is outside the supported shapes. */
export function fastCanonicalEncode(value: unknown): Uint8Array | null {
  pos = 0;
  try {
    item(value, 0);
  } catch (err) {
    if (err === UNSUPPORTED) return null;
    throw err;
  }
  return new Uint8Array(buf.subarray(0, pos));
}

/**
 * The same buffer and rules for an encoder of one fixed shape that knows its keys' order already
 * (identity/reading-leaf.ts: a reading leaf, no key list built or looked up per value). Usage:
 * reset(), write, then take a copy; nothing else may encode in between (single-threaded, synchronous).
 */
export const canonicalWriter = {
  reset(): void {
    pos = 0;
  },
  position(): number {
    return pos;
  },
  /** Bytes already canonical (an encoded key). */
  raw(b: Uint8Array): void {
    ensure(b.length);
    buf.set(b, pos);
    pos += b.length;
  },
  mapHead(n: number): void {
    head(MAJOR_MAP, n);
  },
  /** A number as item() writes it: integer forms for safe integers, else the shortest exact float. */
  number(v: number): void {
    if (Number.isSafeInteger(v)) {
      if (v >= 0) head(MAJOR_UINT, v);
      else head(MAJOR_NEGINT, -v - 1);
    } else float(v);
  },
  text(s: string): void {
    text(s);
  },
  /** A copy of everything written since reset(), in a buffer of its own. */
  take(): Uint8Array {
    const out = new Uint8Array(pos);
    out.set(buf.subarray(0, pos));
    return out;
  },
};

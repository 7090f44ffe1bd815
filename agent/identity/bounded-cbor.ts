import { encode, rfc8949EncodeOptions } from 'cborg';

/**
 * A decoder for the deterministic CBOR of docs/wire-format.md §2 that enforces hard limits while
 * it scans, before it builds anything: total bytes, nesting depth, text and byte string lengths,
 * the length of every array and map (by its path, e.g. `r` or `vd.*.o`), and the total number of
 * items. A length argument is checked against its limit and against the bytes left before the
 * container is allocated, so 2,000,000 empty maps cost one comparison, not 2,000,000 objects.
 *
 * It accepts exactly what "decode, re-encode, compare" accepts (§2 last paragraph), checked as it
 * goes: shortest arguments, definite lengths, text keys in bytewise order without repeats, valid
 * UTF-8, no tags, `false`/`true` as the only simple values besides floats, floats in the §2 form.
 * The first problem stops the scan. Shared by the v1/v2 verifiers and available to version 3.
 */

export interface CborLimits {
  /** Largest input accepted, in bytes. */
  maxBytes: number;
  /** Containers may nest this deep (the top-level container is depth 1). */
  maxDepth: number;
  /** Longest text string, in UTF-8 bytes (keys included). */
  maxTextBytes: number;
  /** Longest byte string. */
  maxByteStringBytes: number;
  /** Default limit on the entries of a map or the items of an array. */
  maxLength: number;
  /** Limits by path: map keys joined with '.', '*' for any array index (e.g. `r`, `vd.*.o`). */
  lengthByPath?: Readonly<Record<string, number>>;
  /** Longest byte string by path (e.g. `body` of an envelope). */
  byteStringBytesByPath?: Readonly<Record<string, number>>;
  /** All array items plus all map entries together. */
  maxItems: number;
  /** Paths of arrays whose items' byte spans to report (Merkle leaves, §3: slices of the body). */
  spansOf?: readonly string[];
  /**
   * false: plain CBOR from a sensor (SenML CBOR, RFC 8428 §6), same limits but no determinism:
   * any argument width, any key order, integer or text keys, any float width, `null`; maps are
   * returned as `Map`. Indefinite lengths, tags and `undefined` are still refused.
   */
  deterministic?: boolean;
}

export class CborLimitError extends Error {
  constructor(
    message: string,
    /** Byte offset where the problem was found. */
    readonly offset: number,
  ) {
    super(message);
    this.name = 'CborLimitError';
  }
}

export interface BoundedDecoded {
  value: unknown;
  /** For every path of `spansOf`: [start, end) of each item in the input. */
  spans: Map<string, [number, number][]>;
}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** Decodes `bytes` under `limits`; throws CborLimitError naming the first problem and its offset. */
export function decodeBounded(bytes: Uint8Array, limits: CborLimits): BoundedDecoded {
  if (bytes.length > limits.maxBytes) throw new CborLimitError(`${bytes.length} bytes, more than the limit of ${limits.maxBytes}`, 0);
  if (bytes.length === 0) throw new CborLimitError('empty input', 0);
  const spans = new Map<string, [number, number][]>();
  for (const p of limits.spansOf ?? []) spans.set(p, []);
  const scanner = new Scanner(bytes, limits, spans);
  const value = scanner.item(0, '');
  if (scanner.pos !== bytes.length) throw new CborLimitError(`${bytes.length - scanner.pos} bytes after the end of the data item`, scanner.pos);
  return { value, spans };
}

class Scanner {
  pos = 0;
  private items = 0;
  constructor(
    private readonly b: Uint8Array,
    private readonly limits: CborLimits,
    private readonly spans: Map<string, [number, number][]>,
  ) {
    this.strict = limits.deterministic ?? true;
  }

  private readonly strict: boolean;

  private fail(message: string, at = this.pos): never {
    throw new CborLimitError(message, at);
  }

  private need(n: number): void {
    if (this.pos + n > this.b.length) this.fail(`truncated: ${n} more bytes needed at offset ${this.pos}`);
  }

  /** The argument of the head at `pos` (RFC 8949 §3), insisting on the shortest form (§2 rule 2). */
  private argument(info: number, start: number): number {
    if (info < 24) return info;
    const size = info === 24 ? 1 : info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0) this.fail(info === 31 ? 'indefinite length (§2 rule 2: lengths are definite)' : `reserved additional information ${info}`, start);
    this.need(size);
    let v = 0;
    for (let k = 0; k < size; k++) v = v * 256 + this.b[this.pos + k]!;
    this.pos += size;
    const min = size === 1 ? 24 : size === 2 ? 0x100 : size === 4 ? 0x10000 : 0x100000000;
    if (this.strict && v < min) this.fail('argument not in its shortest form (§2 rule 2)', start);
    // Beyond 2^53 - 1 a JavaScript number is not exact (§1: integers are within ±(2^53−1)).
    if (v > Number.MAX_SAFE_INTEGER) this.fail('integer or length beyond 2^53 - 1 (§1)', start);
    return v;
  }

  private limitFor(path: string): number {
    return this.limits.lengthByPath?.[path] ?? this.limits.maxLength;
  }

  private countItems(n: number, start: number): void {
    this.items += n;
    if (this.items > this.limits.maxItems) this.fail(`more than ${this.limits.maxItems} items in all`, start);
  }

  item(depth: number, path: string): unknown {
    const start = this.pos;
    this.need(1);
    const ib = this.b[this.pos++]!;
    const major = ib >> 5;
    const info = ib & 0x1f;
    if (major === 7) return this.simple(info, start);
    const arg = this.argument(info, start);
    switch (major) {
      case 0:
        return arg;
      case 1:
        // −1 − (2^53 − 1) = −2^53 is a float in this format (§2 rule 4), never an integer.
        if (arg === Number.MAX_SAFE_INTEGER) this.fail('integer beyond -(2^53 - 1) (§1)', start);
        return -1 - arg;
      case 2: {
        const max = this.limits.byteStringBytesByPath?.[path] ?? this.limits.maxByteStringBytes;
        if (arg > max) this.fail(`byte string of ${arg} bytes at ${path || '(top)'}, more than the limit of ${max}`, start);
        this.need(arg);
        const out = this.b.subarray(this.pos, this.pos + arg);
        this.pos += arg;
        return out;
      }
      case 3:
        return this.text(arg, start, path);
      case 4:
        return this.array(arg, depth + 1, path, start);
      case 5:
        return this.strict ? this.map(arg, depth + 1, path, start) : this.plainMap(arg, depth + 1, path, start);
      default:
        return this.fail(`tag ${arg} (§2 rule 1: no tags)`, start);
    }
  }

  private text(len: number, start: number, path: string): string {
    if (len > this.limits.maxTextBytes) this.fail(`text string of ${len} bytes at ${path || '(top)'}, more than the limit of ${this.limits.maxTextBytes}`, start);
    this.need(len);
    let s: string;
    try {
      s = utf8.decode(this.b.subarray(this.pos, this.pos + len));
    } catch {
      return this.fail(`invalid UTF-8 in a text string at ${path || '(top)'}`, start);
    }
    this.pos += len;
    return s;
  }

  private enter(len: number, depth: number, path: string, start: number, what: string): void {
    if (depth > this.limits.maxDepth) this.fail(`${what} nested deeper than ${this.limits.maxDepth} at ${path || '(top)'}`, start);
    const max = this.limitFor(path);
    if (len > max) this.fail(`${what} of ${len} at ${path || '(top)'}, more than the limit of ${max}`, start);
    // Every item takes at least one byte: a length the input cannot hold is refused before allocating.
    if (len > this.b.length - this.pos) this.fail(`${what} of ${len} cannot fit in the ${this.b.length - this.pos} bytes left`, start);
    this.countItems(len, start);
  }

  private array(len: number, depth: number, path: string, start: number): unknown[] {
    this.enter(len, depth, path, start, 'array');
    const itemPath = path === '' ? '*' : `${path}.*`;
    const spans = this.spans.get(path);
    const out = new Array<unknown>(len);
    for (let k = 0; k < len; k++) {
      const from = this.pos;
      out[k] = this.item(depth, itemPath);
      spans?.push([from, this.pos]);
    }
    return out;
  }

  private map(len: number, depth: number, path: string, start: number): Record<string, unknown> {
    this.enter(len, depth, path, start, 'map');
    const out: Record<string, unknown> = {};
    let prevFrom = -1;
    let prevTo = -1;
    for (let k = 0; k < len; k++) {
      const keyFrom = this.pos;
      this.need(1);
      if (this.b[this.pos]! >> 5 !== 3) this.fail(`map key at ${path || '(top)'} is not a text string`, keyFrom);
      const key = this.item(depth, path) as string;
      const keyTo = this.pos;
      // §2 rule 5: keys sorted by the bytewise order of their encodings, none twice.
      if (prevFrom >= 0) {
        const order = compareBytes(this.b, prevFrom, prevTo, keyFrom, keyTo);
        if (order === 0) this.fail(`duplicate map key "${key}" at ${path || '(top)'}`, keyFrom);
        if (order > 0) this.fail(`map keys not in deterministic order at ${path || '(top)'} ("${key}")`, keyFrom);
      }
      prevFrom = keyFrom;
      prevTo = keyTo;
      const value = this.item(depth, path === '' ? key : `${path}.${key}`);
      // An own property even for "__proto__" (an output name the spec allows, §4.4), never the prototype.
      if (key === '__proto__') Object.defineProperty(out, key, { value, enumerable: true, writable: true, configurable: true });
      else out[key] = value;
    }
    return out;
  }

  /** A map of plain CBOR: integer or text keys, any order, none twice. */
  private plainMap(len: number, depth: number, path: string, start: number): Map<string | number, unknown> {
    this.enter(len, depth, path, start, 'map');
    const out = new Map<string | number, unknown>();
    for (let k = 0; k < len; k++) {
      const keyFrom = this.pos;
      this.need(1);
      const major = this.b[this.pos]! >> 5;
      if (major !== 0 && major !== 1 && major !== 3) this.fail(`map key at ${path || '(top)'} is neither an integer nor a text string`, keyFrom);
      const key = this.item(depth, path) as string | number;
      if (out.has(key)) this.fail(`duplicate map key ${JSON.stringify(key)} at ${path || '(top)'}`, keyFrom);
      out.set(key, this.item(depth, path === '' ? String(key) : `${path}.${String(key)}`));
    }
    return out;
  }

  private simple(info: number, start: number): unknown {
    if (info === 20) return false;
    if (info === 21) return true;
    if (!this.strict && info === 22) return null;
    const size = info === 25 ? 2 : info === 26 ? 4 : info === 27 ? 8 : 0;
    if (size === 0) this.fail(info === 22 ? 'null (§2 rule 1)' : info === 23 ? 'undefined (§2 rule 1)' : `simple value ${info} (§2 rule 1)`, start);
    this.need(size);
    const view = new DataView(this.b.buffer, this.b.byteOffset + this.pos, size);
    const value = size === 2 ? halfToNumber(view.getUint16(0)) : size === 4 ? view.getFloat32(0) : view.getFloat64(0);
    this.pos += size;
    if (!this.strict) return value;
    // §2 rules 3 and 4: the float must be exactly the encoding the reference encoder writes.
    const canonical = encode(value, rfc8949EncodeOptions);
    if (canonical.length !== size + 1 || !sameBytes(canonical, this.b, start)) {
      this.fail(Number.isSafeInteger(value) || Object.is(value, -0) ? 'integral float (§2 rule 3: write it as an integer)' : 'float not in its shortest form (§2 rule 4)', start);
    }
    return value;
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array, at: number): boolean {
  for (let k = 0; k < a.length; k++) if (a[k] !== b[at + k]) return false;
  return true;
}

function compareBytes(b: Uint8Array, aFrom: number, aTo: number, cFrom: number, cTo: number): number {
  const n = Math.min(aTo - aFrom, cTo - cFrom);
  for (let k = 0; k < n; k++) {
    const d = b[aFrom + k]! - b[cFrom + k]!;
    if (d !== 0) return d;
  }
  return aTo - aFrom - (cTo - cFrom);
}

/** IEEE 754 binary16 to a number (RFC 8949 Appendix D). */
function halfToNumber(h: number): number {
  const exp = (h >> 10) & 0x1f;
  const mant = h & 0x3ff;
  const sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  if (exp === 31) return mant === 0 ? sign * Infinity : NaN;
  return sign * (mant + 1024) * 2 ** (exp - 25);
}

/** decodeBounded's value, a limit passed named after `what` (the envelope or body being read) with the byte offset. */
export function decodeNamed(bytes: Uint8Array, what: string, limits: CborLimits): unknown {
  try {
    return decodeBounded(bytes, limits).value;
  } catch (err) {
    if (err instanceof CborLimitError) throw new Error(`${what}: ${err.message} (byte ${err.offset})`);
    throw err;
  }
}

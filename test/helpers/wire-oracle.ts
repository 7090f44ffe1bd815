import { createHash, createPublicKey, verify } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { decode, encode, rfc8949EncodeOptions } from 'cborg';

/**
 * A second reading of docs/wire-format.md §2-§6 for the fuzz tests, written from the document and
 * the vectors, sharing no code with agent/identity: cborg's decode-and-re-encode for §2, a
 * hand-written schema for §3/§4, node:crypto plus the vectors' small-order list for §5, and its own
 * Merkle tree. It says which reason §6.1 gives a single envelope (undefined: valid).
 */

const vectors = JSON.parse(readFileSync(resolve(import.meta.dirname, '../../docs/wire-format-vectors.json'), 'utf8')) as {
  smallOrderKeys: { smallOrder: string[]; nonCanonical: string[] };
};
const WEAK = new Set([...vectors.smallOrderKeys.smallOrder, ...vectors.smallOrderKeys.nonCanonical]);

export interface OracleBatch {
  dev: Uint8Array;
  seq: number;
  prev: Uint8Array;
  hash: string;
}
export type OracleResult = { reason: string } | { reason: undefined; batch: OracleBatch };

class Reject extends Error {
  constructor(readonly reason: string, message: string) {
    super(message);
  }
}

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return new Uint8Array(h.digest());
};
const hexOf = (b: Uint8Array) => Buffer.from(b).toString('hex');

function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return sha(Uint8Array.of(0), leaves[0]!);
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Uint8Array.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}

function deterministic(bytes: Uint8Array): unknown {
  let v: unknown;
  try {
    v = decode(bytes, { strict: true, rejectDuplicateMapKeys: true, allowUndefined: false, allowIndefinite: false, useMaps: false });
  } catch {
    throw new Reject('malformed', 'not CBOR');
  }
  if (!Buffer.from(encode(v, rfc8949EncodeOptions)).equals(Buffer.from(bytes))) throw new Reject('malformed', 'not deterministic');
  itemsOfThisFormat(v);
  return v;
}

/** §2 rule 1 and §1: no null, and no integer beyond ±(2^53−1) (cborg gives those as bigint). */
function itemsOfThisFormat(v: unknown): void {
  if (v === null || typeof v === 'bigint') throw new Reject('malformed', 'null or a big integer');
  if (Array.isArray(v)) v.forEach(itemsOfThisFormat);
  else if (typeof v === 'object' && !(v instanceof Uint8Array)) Object.values(v as object).forEach(itemsOfThisFormat);
}

const isMap = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
const isBytes = (v: unknown, n?: number) => v instanceof Uint8Array && (n === undefined || v.length === n);
const isInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v);
const isUint = (v: unknown) => isInt(v) && (v as number) >= 0;
const isFinite = (v: unknown) => typeof v === 'number' && Number.isFinite(v);
const isText = (v: unknown, min: number, max: number) => typeof v === 'string' && v.length >= min && v.length <= max; // UTF-16 code units (§3)

function shape(what: string, v: unknown, required: string[], optional: string[]): Record<string, unknown> {
  if (!isMap(v)) throw new Reject('malformed', `${what} not a map`);
  const keys = Object.keys(v);
  for (const k of required) if (!keys.includes(k)) throw new Reject('malformed', `${what} lacks ${k}`);
  for (const k of keys) if (!required.includes(k) && !optional.includes(k)) throw new Reject('malformed', `${what} has ${k}`);
  return v;
}

function check(ok: boolean, what: string): void {
  if (!ok) throw new Reject('malformed', what);
}

function schema(body: Record<string, unknown>): void {
  const b = shape('body', body, ['fmt', 'dev', 'seq', 'prev', 'boot', 'sync', 'created', 't0', 't1', 'n', 'root', 'r'], ['m', 'vd', 'vroot', 'drops']);
  check(b.fmt === 'edge-agent/batch/1' || b.fmt === 'edge-agent/batch/2', 'fmt');
  check(isBytes(b.dev, 32) && isBytes(b.prev, 32) && isBytes(b.root, 32), 'bytes32');
  check(isUint(b.seq) && (b.seq as number) >= 1 && isUint(b.boot) && typeof b.sync === 'boolean', 'seq/boot/sync');
  check(isInt(b.created) && isInt(b.t0) && isInt(b.t1) && isUint(b.n), 'ints');
  check(Array.isArray(b.r) && b.r.length <= 10_000, 'r');
  for (const r of b.r as unknown[]) {
    const x = shape('reading', r, ['i', 'b', 's', 't', 'q', 'v', 'src'], ['u', 'n']);
    check(isUint(x.i) && isUint(x.b) && isInt(x.t) && (x.q === 0 || x.q === 1 || x.q === 2) && isFinite(x.v), 'reading numbers');
    check(isText(x.s, 1, 256) && isText(x.src, 1, 64) && (x.u === undefined || isText(x.u, 1, 32)) && (x.n === undefined || isUint(x.n)), 'reading texts');
  }
  const v2 = [b.m, b.vd, b.vroot].filter((x) => x !== undefined).length;
  check(v2 === 0 || v2 === 3, 'm/vd/vroot together');
  if (b.fmt === 'edge-agent/batch/1') check(v2 === 0 && b.drops === undefined, 'v2 keys in v1');
  else check(v2 === 3 || b.drops !== undefined, 'v2 without verdicts or drops');
  check((b.r as unknown[]).length > 0 || v2 === 3, 'empty batch');
  if (v2 === 3) {
    check(Array.isArray(b.m) && b.m.length >= 1 && b.m.length <= 64 && isBytes(b.vroot, 32), 'm');
    const seen = new Set<string>();
    for (const m of b.m as unknown[]) {
      const x = shape('model', m, ['id', 'h'], []);
      check(typeof x.id === 'string' && /^[a-z0-9][a-z0-9-]{0,63}$/.test(x.id) && isBytes(x.h, 32), 'model');
      seen.add(`${x.id as string}:${hexOf(x.h as Uint8Array)}`);
    }
    check(seen.size === (b.m as unknown[]).length, 'model twice');
    check(Array.isArray(b.vd) && b.vd.length >= 1 && b.vd.length <= 10_000, 'vd');
    for (const v of b.vd as unknown[]) {
      const x = shape('verdict', v, ['i', 'k', 'm', 'w', 't', 'o', 'v', 'th', 'a', 'c'], ['r', 's']);
      check(isUint(x.i) && isText(x.k, 1, 256) && isUint(x.m) && (x.r === undefined || isUint(x.r)) && isInt(x.w) && isInt(x.t), 'verdict ints');
      check(isMap(x.o) && Object.keys(x.o).length >= 1 && Object.keys(x.o).length <= 32, 'o');
      for (const [k, val] of Object.entries(x.o as Record<string, unknown>)) check(/^[a-z_][a-z0-9_]{0,22}$/.test(k) && isFinite(val), 'output');
      check((x.s === undefined || (isFinite(x.s) && (x.s as number) >= 0 && (x.s as number) <= 1)) && isFinite(x.v) && isFinite(x.th), 'verdict numbers');
      check(typeof x.a === 'boolean' && typeof x.c === 'boolean' && (x.w as number) <= (x.t as number), 'verdict a/c/w');
      check((x.m as number) < (b.m as unknown[]).length, 'verdict m');
    }
  }
  if (b.drops !== undefined) {
    check(Array.isArray(b.drops) && b.drops.length >= 1 && b.drops.length <= 100_000, 'drops');
    const names = new Set<string>();
    for (const d of b.drops as unknown[]) {
      const x = shape('drop', d, ['s', 'n'], []);
      check(isText(x.s, 1, 256) && isUint(x.n) && (x.n as number) >= 1, 'drop');
      names.add(x.s as string);
    }
    check(names.size === (b.drops as unknown[]).length, 'drop twice');
  }
}

const SPKI = Buffer.from('302a300506032b6570032100', 'hex');
const keyObjects = new Map<string, ReturnType<typeof createPublicKey>>();
function keyObject(dev: Uint8Array) {
  const k = hexOf(dev);
  let key = keyObjects.get(k);
  if (!key) keyObjects.set(k, (key = createPublicKey({ key: Buffer.concat([SPKI, dev]), format: 'der', type: 'spki' })));
  return key;
}

/**
 * §6.3, read from its table: container sizes by place (the body's top-level arrays have their own
 * limits, a verdict's `o` 32, any other map 16 entries, any other array 16), depth at most 4, text
 * at most 768 UTF-8 bytes, byte strings at most 32 bytes in the body. Beyond one: `malformed`.
 */
function withinLimits(v: unknown, path: string[], depth: number): boolean {
  if (depth > 4 && (Array.isArray(v) || isMap(v))) return false;
  if (typeof v === 'string') return Buffer.byteLength(v, 'utf8') <= 768;
  if (v instanceof Uint8Array) return v.length <= 32;
  if (Array.isArray(v)) {
    const top = path.length === 1 ? path[0] : undefined;
    const max = top === 'r' || top === 'vd' ? 10_000 : top === 'm' ? 64 : top === 'drops' ? 100_000 : 16;
    return v.length <= max && v.every((x) => withinLimits(x, [...path, '*'], depth + 1));
  }
  if (isMap(v)) {
    const entries = Object.entries(v as Record<string, unknown>);
    const max = path.length === 3 && path[0] === 'vd' && path[2] === 'o' ? 32 : 16;
    return entries.length <= max && entries.every(([k, x]) => withinLimits(x, [...path, k], depth + 1));
  }
  return true;
}

/** §6.1 for one envelope, by this independent reading. */
export function oracle(envelope: Uint8Array): OracleResult {
  try {
    check(envelope.length <= 8 * 1024 * 1024, 'envelope size');
    const env = shape('envelope', deterministic(envelope), ['body', 'sig'], []);
    check(isBytes(env.body) && isBytes(env.sig, 64), 'envelope types');
    const bodyBytes = env.body as Uint8Array;
    const sig = env.sig as Uint8Array;
    check(bodyBytes.length <= 8 * 1024 * 1024 - 128, 'body size');
    const body = deterministic(bodyBytes);
    check(withinLimits(body, [], 1), 'limits of §6.3');
    check(isMap(body) && isBytes(body.dev, 32), 'dev');
    const dev = (body as Record<string, Uint8Array>).dev!;
    let good = !WEAK.has(hexOf(dev)) && !WEAK.has(hexOf(sig.subarray(0, 32)));
    if (good) {
      try {
        good = verify(null, bodyBytes, keyObject(dev), sig);
      } catch {
        good = false;
      }
    }
    if (!good) throw new Reject('bad-signature', 'signature');
    schema(body as Record<string, unknown>);
    const b = body as Record<string, unknown> & { r: Record<string, unknown>[]; vd?: Record<string, unknown>[] };
    if (b.n !== b.r.length) throw new Reject('bad-count', 'n');
    if (new Set(b.r.map((x) => x.i)).size !== b.r.length) throw new Reject('duplicate-reading-id', 'i');
    if (b.vd && new Set(b.vd.map((x) => x.i)).size !== b.vd.length) throw new Reject('duplicate-verdict-id', 'i');
    const times = [...b.r, ...(b.vd ?? [])].map((x) => x.t as number);
    if (b.t0 !== Math.min(...times) || b.t1 !== Math.max(...times)) throw new Reject('bad-time-range', 't');
    const leaves = (xs: unknown[]) => xs.map((x) => encode(x, rfc8949EncodeOptions));
    if (hexOf(mth(leaves(b.r))) !== hexOf(b.root as Uint8Array)) throw new Reject('bad-merkle-root', 'root');
    if (b.vd && hexOf(mth(leaves(b.vd))) !== hexOf(b.vroot as Uint8Array)) throw new Reject('bad-merkle-root', 'vroot');
    return { reason: undefined, batch: { dev, seq: b.seq as number, prev: b.prev as Uint8Array, hash: hexOf(sha(bodyBytes)) } };
  } catch (err) {
    if (err instanceof Reject) return { reason: err.reason };
    throw err;
  }
}

/** §6.2 at a receiver holding `held` (device:seq → {hash, prev}): the answer to a valid batch. */
export function chainAnswer(held: Map<string, { hash: string; prev: string }>, b: OracleBatch): { status: number; reason?: string; kind?: string } {
  const dev = hexOf(b.dev);
  const same = held.get(`${dev}:${b.seq}`);
  if (same) return same.hash === b.hash ? { status: 200, kind: 'duplicate' } : { status: 409, reason: 'seq-conflict' };
  const prev = hexOf(b.prev);
  if (b.seq === 1 && prev !== '00'.repeat(32)) return { status: 409, reason: 'chain-broken' };
  const before = held.get(`${dev}:${b.seq - 1}`);
  if (b.seq > 1 && before && before.hash !== prev) return { status: 409, reason: 'chain-broken' };
  const after = held.get(`${dev}:${b.seq + 1}`);
  if (after && after.prev !== b.hash) return { status: 409, reason: 'chain-broken' };
  held.set(`${dev}:${b.seq}`, { hash: b.hash, prev });
  return { status: 200, kind: 'accepted' };
}

export const STATUS_OF: Record<string, number> = {
  'malformed': 400,
  'bad-signature': 403,
  'bad-count': 422,
  'duplicate-reading-id': 422,
  'duplicate-verdict-id': 422,
  'bad-time-range': 422,
  'bad-merkle-root': 422,
};

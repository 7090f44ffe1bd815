import { decode, encode, rfc8949EncodeOptions } from 'cborg';
import { createHash } from 'node:crypto';
import type { SignedBatch } from '../../agent/identity/batch-format.js';
import type { Identity } from '../../agent/identity/keys.js';

/**
 * Structure-aware mutations of valid batches for the receiver fuzz tests: one byte, one length, or
 * one field changed; most are re-signed by the device so that the checks after the signature are
 * reached, and half of the field edits also recompute n, t0/t1 and the roots so that the later
 * checks and the chain are reached. Driven by a seeded generator (the seed is printed by the test).
 */

export type Rng = () => number;

/** mulberry32 (the fleet tooling's): the same sequence for the same seed, so a failing run replays from its printed seed. */
export { seededRandom as seeded } from '../../scripts/fleet/lib/random.js';

const int = (rng: Rng, n: number) => Math.floor(rng() * n);
const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[int(rng, xs.length)]!;
const EMOJI = '\u{1F600}';
const IDENTITY = Uint8Array.from(Buffer.from('01' + '00'.repeat(31), 'hex'));
const ORDER8 = Uint8Array.from(Buffer.from('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05', 'hex'));

const VALUES: readonly (() => unknown)[] = [
  () => 0, () => 1, () => -1, () => 2 ** 53, () => 2 ** 32, () => 1.5, () => 0.1, () => -0.5, () => NaN, () => Infinity, () => 2,
  () => '', () => 'x', () => 'x'.repeat(257), () => 'é'.repeat(256), () => EMOJI.repeat(129), () => EMOJI.repeat(128), () => EMOJI.repeat(17), () => EMOJI.repeat(33),
  () => '__proto__', () => 'edge-agent/batch/2', () => 'edge-agent/batch/1',
  () => new Uint8Array(31), () => new Uint8Array(32), () => new Uint8Array(33), () => IDENTITY, () => ORDER8,
  () => true, () => false, () => [], () => ({}), () => ({ a: 1 }), () => [1], () => ({ __proto__x: 1 }),
];

export interface Mutant {
  kind: string;
  envelope: Uint8Array;
}

const envelopeOf = (body: Uint8Array, sig: Uint8Array) => encode({ body, sig }, rfc8949EncodeOptions);
const sha = (b: Uint8Array) => new Uint8Array(createHash('sha256').update(b).digest());

function mth(leaves: Uint8Array[]): Uint8Array {
  if (leaves.length === 0) return sha(new Uint8Array(0));
  if (leaves.length === 1) return sha(Buffer.concat([Uint8Array.of(0), leaves[0]!]));
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return sha(Buffer.concat([Uint8Array.of(1), mth(leaves.slice(0, k)), mth(leaves.slice(k))]));
}

type Node = Record<string, unknown> | unknown[];
interface Slot {
  parent: Node;
  key: string | number;
}

function slots(v: unknown, out: Slot[] = []): Slot[] {
  if (Array.isArray(v)) v.forEach((x, k) => (out.push({ parent: v, key: k }), slots(x, out)));
  else if (typeof v === 'object' && v !== null && !(v instanceof Uint8Array)) {
    for (const k of Object.keys(v)) {
      out.push({ parent: v as Record<string, unknown>, key: k });
      slots((v as Record<string, unknown>)[k], out);
    }
  }
  return out;
}

/** Recomputes what a careful forger would: n, t0/t1, root, vroot (so later checks are reached). */
function fixUp(body: Record<string, unknown>): void {
  const r = Array.isArray(body.r) ? (body.r as unknown[]) : undefined;
  const vd = Array.isArray(body.vd) ? (body.vd as unknown[]) : undefined;
  if (r) {
    body.n = r.length;
    body.root = mth(r.map((x) => encode(x, rfc8949EncodeOptions)));
  }
  if (vd) body.vroot = mth(vd.map((x) => encode(x, rfc8949EncodeOptions)));
  const times = [...(r ?? []), ...(vd ?? [])].map((x) => (x as { t?: unknown }).t).filter((t): t is number => typeof t === 'number');
  if (times.length > 0) {
    body.t0 = Math.min(...times);
    body.t1 = Math.max(...times);
  }
}

function editField(rng: Rng, body: Record<string, unknown>): string {
  const all = slots(body);
  const slot = pick(rng, all);
  const target = (slot.parent as Record<string | number, unknown>)[slot.key];
  const op = int(rng, 6);
  if (op === 0 && !Array.isArray(slot.parent)) {
    delete (slot.parent as Record<string, unknown>)[slot.key as string];
    return 'field-delete';
  }
  if (op === 1 && typeof target === 'object' && target !== null && !Array.isArray(target) && !(target instanceof Uint8Array)) {
    // defineProperty: `o.__proto__ = v` would set the prototype instead of adding a key.
    Object.defineProperty(target, pick(rng, ['x', 'z', 'sig', 'hdr', 'ev', '__proto__']), { value: pick(rng, VALUES)(), enumerable: true, writable: true, configurable: true });
    return 'field-add-key';
  }
  if (op === 2 && Array.isArray(target) && target.length > 0) {
    const k = int(rng, target.length);
    if (rng() < 0.5) target.splice(k, 0, structuredClone(target[k]));
    else target.splice(k, 1);
    return 'array-length';
  }
  if (op === 3 && Array.isArray(target) && target.length > 1) {
    const a = int(rng, target.length);
    const c = int(rng, target.length);
    [target[a], target[c]] = [target[c], target[a]];
    return 'array-swap';
  }
  if (op === 4 && typeof target === 'number') {
    (slot.parent as Record<string | number, unknown>)[slot.key] = pick(rng, [target + 1, target - 1, -target, target * 2, target + 0.5]);
    return 'number-nudge';
  }
  (slot.parent as Record<string | number, unknown>)[slot.key] = pick(rng, VALUES)();
  return 'field-replace';
}

/** One mutant of `base`, re-signed by `device` where the kind says so. */
export function mutate(rng: Rng, base: SignedBatch, device: Identity): Mutant {
  const roll = rng();
  if (roll < 0.2) {
    const e = Uint8Array.from(base.envelope);
    e[int(rng, e.length)]! ^= 1 + int(rng, 255);
    return { kind: 'envelope-byte', envelope: e };
  }
  if (roll < 0.25) return { kind: 'envelope-truncate', envelope: base.envelope.slice(0, int(rng, base.envelope.length)) };
  if (roll < 0.4) {
    const body = Uint8Array.from(base.bodyBytes);
    body[int(rng, body.length)]! ^= 1 + int(rng, 255);
    return { kind: 'body-byte', envelope: envelopeOf(body, device.sign(body)) };
  }
  if (roll < 0.55) {
    const body = Uint8Array.from(base.bodyBytes);
    const heads: number[] = [];
    for (let p = 0; p < body.length; p++) if ([2, 3, 4, 5].includes(body[p]! >> 5) && (body[p]! & 31) < 24) heads.push(p);
    const p = pick(rng, heads);
    const info = body[p]! & 31;
    body[p] = (body[p]! & 0xe0) | (info === 0 ? 1 : info === 23 ? 22 : info + (rng() < 0.5 ? 1 : -1));
    return { kind: 'body-length', envelope: envelopeOf(body, device.sign(body)) };
  }
  const body = decode(base.bodyBytes, { useMaps: false }) as Record<string, unknown>;
  const kind = editField(rng, body);
  const fixed = rng() < 0.5;
  if (fixed) fixUp(body);
  let bytes: Uint8Array;
  try {
    bytes = encode(body, rfc8949EncodeOptions);
  } catch {
    return { kind: 'envelope-byte', envelope: base.envelope.slice(1) };
  }
  // A few forgeries: a small-order dev with the identity signature (R = identity, S = 0).
  const forge = body.dev instanceof Uint8Array && (body.dev[0] === 0x01 || body.dev[0] === 0x26) && body.dev.length === 32;
  const sig = forge ? Uint8Array.from(Buffer.from('01' + '00'.repeat(63), 'hex')) : device.sign(bytes);
  return { kind: `${kind}${fixed ? '+fixed' : ''}${forge ? '+forged' : ''}`, envelope: envelopeOf(bytes, sig) };
}

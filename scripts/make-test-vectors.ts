/**
 * Generates docs/wire-format-vectors.json, the test vectors of docs/wire-format.md §9.
 * Everything is fixed (seeds, readings, clocks), so the output is byte-for-byte reproducible:
 *   node dist/scripts/make-test-vectors.js           writes the file
 *   node dist/scripts/make-test-vectors.js --check   exits 1 if the file on disk differs
 * test/unit/wire-format.test.ts compares makeVectors() with the committed file.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { BATCH_FORMAT, BATCH_FORMAT_V2, buildBatch, hex, readingLeaves, toBatchReading, ZERO_HASH, type BatchBody, type SignedBatch } from '../agent/identity/batch-format.js';
import { toBatchVerdicts, verdictLeaves, type StoredVerdict } from '../agent/identity/verdict-format.js';
import { canonicalDecode, canonicalEncode } from '../agent/identity/canonical.js';
import { smallOrderEncodings } from '../agent/identity/ed25519-points.js';
import { Identity } from '../agent/identity/keys.js';
import { leafHash, merkleRoot } from '../agent/identity/merkle.js';
import { RECEIPT_FORMAT, signReceipt } from '../agent/identity/receipt.js';
import type { StoredReading } from '../agent/types.js';

const seedOf = (first: number) => Uint8Array.from({ length: 32 }, (_, k) => first + k);
/** Device seed 0x01..0x20, receiver seed 0x21..0x40 (wire-format.md §9). */
export const DEVICE_SEED = seedOf(0x01);
export const RECEIVER_SEED = seedOf(0x21);

const T = 1_763_000_000_000; // 2025-11-13T02:13:20.000Z
/** A 256-character sensor name: the longest §3 allows; its length needs a 2-byte CBOR argument (79 0100). */
const LONG_NAME = 'plant-7/hall-b/line-2/' + Array.from({ length: 20 }, (_, k) => `seg${String(k).padStart(2, '0')}/`).join('') + 'vib'.padEnd(114, '-');

/** Batch 1: one reading; it is the worked example of §9. */
const BATCH1_READINGS: StoredReading[] = [{ id: 1, sensor: 'pump1/temp', ts: T, timeSource: 'sensor', value: 21.5, unit: 'Cel', source: 'mqtt', boot: 1 }];

/** Batch 2: every number form, each time source, unit and sensor seq, non-ASCII and long names.
 *  Readings 2-6 were accepted in boot 1 and batched after the reboot (batch boot 2): §10. */
const BATCH2_READINGS: StoredReading[] = [
  { id: 2, sensor: 'pump1/temp', ts: T + 1_000, timeSource: 'sensor', value: 21, unit: 'Cel', seq: 17, source: 'mqtt', boot: 1 }, // integer value
  { id: 3, sensor: 'pump1/flow', ts: T + 1_100, timeSource: 'gateway-synced', value: 0.1, unit: 'm3/s', source: 'mqtt', boot: 1 }, // float64
  { id: 4, sensor: 'pump1/pressure', ts: T + 1_200, timeSource: 'gateway-synced', value: 1.5, source: 'mqtt', boot: 1 }, // float16
  { id: 5, sensor: 'meter/energy', ts: T + 1_300, timeSource: 'gateway-synced', value: 100000.5, unit: 'J', source: 'mqtt', boot: 1 }, // float32
  { id: 6, sensor: 'cellar/temp', ts: T - 5_000, timeSource: 'sensor', value: -12.5, unit: 'Cel', seq: 4_000_000_000, source: 'mqtt', boot: 1 }, // negative; earliest t
  { id: 7, sensor: 'boot/probe', ts: 41_000, timeSource: 'gateway-unsynced', value: -3, source: 'simulator', boot: 2 }, // 1970: clock not set yet
  { id: 8, sensor: 'küche/feuchte', ts: T + 1_400, timeSource: 'gateway-synced', value: 48.3, unit: '%RH', source: 'mqtt', boot: 2 }, // UTF-8 name
  { id: 9, sensor: LONG_NAME, ts: T + 1_500, timeSource: 'gateway-synced', value: 7, source: 'mqtt', boot: 2 },
];

/** Batch 3 (version 2, §4.4): two readings and three verdicts of two models, one raising an alert. */
const BATCH3_READINGS: StoredReading[] = [
  { id: 10, sensor: 'pump1/vibration', ts: T + 60_000, timeSource: 'sensor', value: 5.2, unit: 'm/s2', source: 'mqtt', boot: 2 },
  { id: 11, sensor: 'pump1/vibration', ts: T + 61_000, timeSource: 'sensor', value: 5.4, unit: 'm/s2', source: 'mqtt', boot: 2 },
];
const MODEL_A = Uint8Array.from({ length: 32 }, (_, k) => 0xa0 + (k % 16));
const MODEL_B = Uint8Array.from({ length: 32 }, (_, k) => 0xb0 + (k % 16));
const BATCH3_VERDICTS: StoredVerdict[] = [
  { id: 1, key: 'pump1/vibration', modelId: 'stream-ad', modelSha256: MODEL_A, windowStart: T + 29_000, ts: T + 60_000, readingId: 10, outputs: { error: 3.25 }, score: 0.75, value: 0.75, threshold: 0.5, alert: false, changed: false },
  { id: 2, key: 'pump1/vibration', modelId: 'stream-ad', modelSha256: MODEL_A, windowStart: T + 30_000, ts: T + 61_000, readingId: 11, outputs: { error: 4.5 }, score: 0.875, value: 0.875, threshold: 0.5, alert: true, changed: true },
  { id: 3, key: 'engine7', modelId: 'cmapss-rul', modelSha256: MODEL_B, windowStart: T - 30_000, ts: T + 500, outputs: { rul: 112.5 }, value: 112.5, threshold: 30, alert: false, changed: false },
];
/** Batch 4: readings 12 and 13 were dropped under the disk budget (never signed); the batch
 *  reports them per sensor in its optional `drops` field (§4.5). */
const BATCH4_READINGS: StoredReading[] = [{ id: 14, sensor: 'pump1/temp', ts: T + 69_000, timeSource: 'sensor', value: 22.5, unit: 'Cel', source: 'mqtt', boot: 2 }];
const BATCH4_DROPS = [{ s: 'pump1/temp', n: 1 }, { s: 'pump1/flow', n: 1 }];

/** Standalone batch: one reading and a verdict whose outputs are `__proto__` and `error` (a leaf a naive parser rebuilds without `__proto__`). */
const BATCH5_READINGS: StoredReading[] = [{ id: 40, sensor: 'pump1/temp', ts: T + 75_000, timeSource: 'gateway-synced', value: 22, unit: 'Cel', source: 'mqtt', boot: 2 }];
const BATCH5_VERDICTS: StoredVerdict[] = [
  { id: 4, key: 'pump1/temp', modelId: 'stream-ad', modelSha256: Uint8Array.from({ length: 32 }, (_, k) => 0xa0 + k), windowStart: T + 45_000, ts: T + 75_000, readingId: 40, outputs: JSON.parse('{"__proto__": 0.25, "error": 1.5}') as Record<string, number>, score: 0.25, value: 0.25, threshold: 0.5, alert: false, changed: false },
];

/** RFC 6962 / Certificate Transparency reference leaves; roots for these prefixes are published. */
const MERKLE_LEAVES = ['', '00', '10', '2021', '3031'];

/** Single values and their deterministic encoding (§2): [label, value]. The JSON holds the value as text, so that -0 survives. */
const NUMBERS: [string, number][] = [
  ['0', 0], ['-0', -0], ['23', 23], ['24', 24], ['-1', -1], ['-24', -24], ['-25', -25], ['65536', 65536],
  ['2^53-1', 2 ** 53 - 1], ['-(2^53-1)', -(2 ** 53 - 1)], ['2^53', 2 ** 53], ['1.5', 1.5], ['-12.5', -12.5],
  ['65504.5', 65504.5], ['100000.5', 100000.5], ['0.1', 0.1], ['48.3', 48.3], ['1e300', 1e300],
  ['2^-24', 2 ** -24], ['3*2^-24', 3 * 2 ** -24], ['2^-126', 2 ** -126], ['5e-324', 5e-324],
];

const b = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'));

function keyVector(id: Identity, seed: Uint8Array) {
  return { seed: hex(seed), publicKey: hex(id.publicKey), did: id.deviceId, pkcs8Pem: id.toPem() };
}

/** The body as JSON: byte strings as lowercase hex, everything else as is. */
function bodyJson(body: BatchBody) {
  const v2 = body.vd ? { m: body.m!.map((m) => ({ id: m.id, h: hex(m.h) })), vroot: hex(body.vroot!) } : {};
  return { ...body, dev: hex(body.dev), prev: hex(body.prev), root: hex(body.root), ...v2 };
}

function batchVector(name: string, readings: StoredReading[], batch: SignedBatch, verdicts: StoredVerdict[] = []) {
  const leaves = readingLeaves(batch.body.r);
  const vLeaves = verdictLeaves(batch.body.vd ?? []);
  const wire = toBatchVerdicts(verdicts).vd;
  const v2 =
    verdicts.length === 0
      ? {}
      : {
          models: batch.body.m!.map((m) => ({ id: m.id, h: hex(m.h) })),
          verdicts: verdicts.map((input, k) => ({ input: { ...input, modelSha256: hex(input.modelSha256) }, wire: wire[k]!, cbor: hex(vLeaves[k]!), leafHash: hex(leafHash(vLeaves[k]!)) })),
          vroot: hex(batch.body.vroot!),
        };
  return {
    name,
    header: { seq: batch.body.seq, prev: hex(batch.body.prev), boot: batch.body.boot, sync: batch.body.sync, created: batch.body.created, ...(batch.body.drops ? { drops: batch.body.drops } : {}) },
    readings: readings.map((input, k) => ({ input, wire: toBatchReading(input), cbor: hex(leaves[k]!), leafHash: hex(leafHash(leaves[k]!)) })),
    root: hex(batch.body.root),
    ...v2,
    body: bodyJson(batch.body),
    bodyCbor: hex(batch.bodyBytes),
    hash: hex(batch.hash),
    signature: hex(batch.signature),
    envelope: hex(batch.envelope),
  };
}

/** Ed25519 group order L (RFC 8032 §5.1). */
const L = 2n ** 252n + 27742317777372353535851937790883648493n;

/** The same signature with S replaced by S + L: valid under a lax verifier, refused by RFC 8032 §5.1.7. */
function malleate(sig: Uint8Array): Uint8Array {
  const s = BigInt('0x' + Buffer.from(sig.subarray(32)).reverse().toString('hex')) + L;
  const out = Uint8Array.from(sig);
  out.set(Buffer.from(s.toString(16).padStart(64, '0'), 'hex').reverse(), 32);
  return out;
}

function negativeVectors(device: Identity, receiver: Identity, b1: SignedBatch, b3: SignedBatch) {
  const env = (body: Uint8Array, sig: Uint8Array) => canonicalEncode({ body, sig });
  const signed = (body: Uint8Array) => env(body, device.sign(body));
  const editedOf = (base: SignedBatch) => (edit: (body: BatchBody) => void) => {
    const body = structuredClone(base.body);
    edit(body);
    return canonicalEncode(body);
  };
  const edited = editedOf(b1);
  const edited3 = editedOf(b3);
  const swapBytes = (bytes: Uint8Array, from: string, to: string) => {
    const h = hex(bytes);
    if (h.split(from).length !== 2) throw new Error(`expected exactly one ${from} in ${h}`);
    return b(h.replace(from, to));
  };
  const reorderedEnvelope = b(`a2${hex(canonicalEncode('body'))}${hex(canonicalEncode(b1.bodyBytes))}${hex(canonicalEncode('sig'))}${hex(canonicalEncode(b1.signature))}`);
  return [
    { name: 'value-changed', reason: 'bad-signature', description: 'batch 1 with the reading value 21.5 changed to 22.5 (canonical bytes), original signature', envelope: env(edited((x) => void (x.r[0]!.v = 22.5)), b1.signature) },
    { name: 'signed-by-another-key', reason: 'bad-signature', description: 'batch 1 body (dev = the device key) signed by the receiver key', envelope: env(b1.bodyBytes, receiver.sign(b1.bodyBytes)) },
    { name: 'signature-s-not-reduced', reason: 'bad-signature', description: 'batch 1 with S replaced by S + L; lax Ed25519 verifiers (e.g. tweetnacl) accept it, RFC 8032 §5.1.7 requires S < L', envelope: env(b1.bodyBytes, malleate(b1.signature)) },
    { name: 'float-not-shortest', reason: 'malformed', description: 'batch 1 with 21.5 written as float64 fb4035800000000000 instead of float16 f94d60, validly signed', envelope: signed(swapBytes(b1.bodyBytes, '6176f94d60', '6176fb4035800000000000')) },
    { name: 'integer-as-float', reason: 'malformed', description: 'batch 1 with the reading time t written as float64 fb4279a7afd1e00000 instead of an integer, validly signed', envelope: signed(swapBytes(b1.bodyBytes, '61741b0000019a7afd1e00', '6174fb4279a7afd1e00000')) },
    { name: 'envelope-keys-unsorted', reason: 'malformed', description: 'batch 1 envelope with "body" before "sig" (bytewise order puts "sig" first)', envelope: reorderedEnvelope },
    { name: 'unknown-body-key', reason: 'malformed', description: 'batch 1 body with an extra key "x": 1, validly signed (v1 rejects unknown keys, §11)', envelope: signed(canonicalEncode({ ...b1.body, x: 1 })) },
    { name: 'bad-count', reason: 'bad-count', description: 'batch 1 with n = 2 but one reading, validly signed', envelope: signed(edited((x) => void (x.n = 2))) },
    { name: 'duplicate-reading-id', reason: 'duplicate-reading-id', description: 'two readings with i = 1, built and signed by buildBatch', envelope: buildBatch(device, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: T + 250 }, [BATCH1_READINGS[0]!, { ...BATCH1_READINGS[0]!, ts: T + 1 }]).envelope },
    { name: 'bad-time-range', reason: 'bad-time-range', description: 'batch 1 with t1 one millisecond later than its only reading, validly signed', envelope: signed(edited((x) => void (x.t1 = T + 1))) },
    { name: 'bad-merkle-root', reason: 'bad-merkle-root', description: 'batch 1 with the root of the empty tree, validly signed', envelope: signed(edited((x) => void (x.root = merkleRoot([])))) },
    { name: 'bad-verdict-root', reason: 'bad-merkle-root', description: 'batch 3 with a verdict score changed and the old vroot, validly signed', envelope: signed(edited3((x) => void (x.vd![1]!.s = 0.5))) },
    { name: 'verdict-model-out-of-range', reason: 'malformed', description: 'batch 3 with a verdict naming model 2 of a 2-entry table (vroot recomputed), validly signed', envelope: signed(edited3((x) => { x.vd![2]!.m = 2; x.vroot = merkleRoot(verdictLeaves(x.vd!)); })) },
    { name: 'verdicts-in-version-1', reason: 'malformed', description: 'batch 3 labelled edge-agent/batch/1, validly signed (verdicts need version 2, §11)', envelope: signed(edited3((x) => void (x.fmt = BATCH_FORMAT))) },
    { name: 'duplicate-verdict-id', reason: 'duplicate-verdict-id', description: 'batch 3 with verdict 3 renumbered 2 (vroot recomputed), validly signed', envelope: signed(edited3((x) => { x.vd![2]!.i = 2; x.vroot = merkleRoot(verdictLeaves(x.vd!)); })) },
    ...hardeningNegatives(signed, edited, edited3),
  ].map((v) => ({ ...v, envelope: hex(v.envelope) }));
}

const IDENTITY_POINT = b('01' + '00'.repeat(31));
/** R = the identity point, S = 0: "verifies" any message under a small-order key in a lax verifier (§5). */
const IDENTITY_SIGNATURE = b('01' + '00'.repeat(63));
const EMOJI = '\u{1F600}'; // two UTF-16 code units, four UTF-8 bytes

/** Added with the hardening of issue 12 (appended: the vectors above are unchanged byte for byte). */
function hardeningNegatives(
  signed: (body: Uint8Array) => Uint8Array,
  edited: (edit: (body: BatchBody) => void) => Uint8Array,
  edited3: (edit: (body: BatchBody) => void) => Uint8Array,
) {
  const env = (body: Uint8Array, sig: Uint8Array) => canonicalEncode({ body, sig });
  const withDev = (dev: Uint8Array) => edited((x) => void (x.dev = dev));
  return [
    { name: 'dev-identity-point-forgery', reason: 'bad-signature', description: 'batch 1 with dev = the identity point 0100…00 and sig = 0100…00 || 00…00 (R = identity, S = 0): passes the RFC 8032 equation for any body, refused because dev has small order (§5)', envelope: env(withDev(IDENTITY_POINT), IDENTITY_SIGNATURE) },
    { name: 'dev-small-order-8', reason: 'bad-signature', description: 'batch 1 with dev = a point of order 8 (26e8…fc05) and the identity signature', envelope: env(withDev(b('26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05')), IDENTITY_SIGNATURE) },
    { name: 'dev-non-canonical', reason: 'bad-signature', description: 'batch 1 with dev = edff…ff7f (y = p, a non-canonical encoding of y = 0) and the identity signature', envelope: env(withDev(b('ed' + 'ff'.repeat(30) + '7f')), IDENTITY_SIGNATURE) },
    { name: 'sensor-257-utf16-units', reason: 'malformed', description: 'batch 1 with s = 129 emoji (258 UTF-16 code units, 129 code points; §3 counts code units), root recomputed, validly signed', envelope: signed(resealed(edited, (x) => void (x.r[0]!.s = EMOJI.repeat(129)))) },
    { name: 'unit-33-utf16-units', reason: 'malformed', description: 'batch 1 with u = 17 emoji (34 UTF-16 code units), root recomputed, validly signed', envelope: signed(resealed(edited, (x) => void (x.r[0]!.u = EMOJI.repeat(17)))) },
    { name: 'source-65-utf16-units', reason: 'malformed', description: 'batch 1 with src = 33 emoji (66 UTF-16 code units), root recomputed, validly signed', envelope: signed(resealed(edited, (x) => void (x.r[0]!.src = EMOJI.repeat(33)))) },
    { name: 'verdict-key-257-utf16-units', reason: 'malformed', description: 'batch 3 with verdict 1 k = 129 emoji (258 UTF-16 code units), vroot recomputed, validly signed', envelope: signed(edited3((x) => { x.vd![0]!.k = EMOJI.repeat(129); x.vroot = merkleRoot(verdictLeaves(x.vd!)); })) },
    { name: 'version-2-without-verdicts-or-drops', reason: 'malformed', description: 'batch 1 labelled edge-agent/batch/2, validly signed: a body without verdicts or drops is version 1 (§11)', envelope: signed(edited((x) => void (x.fmt = BATCH_FORMAT_V2))) },
  ];
}

/** Edits batch 1's reading and recomputes root, so that only the edited rule can fail. */
function resealed(edited: (edit: (body: BatchBody) => void) => Uint8Array, edit: (body: BatchBody) => void): Uint8Array {
  return edited((x) => {
    edit(x);
    x.root = merkleRoot(readingLeaves(x.r));
  });
}

export function makeVectors() {
  const device = Identity.fromSeed(DEVICE_SEED);
  const receiver = Identity.fromSeed(RECEIVER_SEED);
  const b1 = buildBatch(device, { seq: 1, prevHash: ZERO_HASH, bootCounter: 1, clockSynced: true, createdMs: T + 250 }, BATCH1_READINGS);
  const b2 = buildBatch(device, { seq: 2, prevHash: b1.hash, bootCounter: 2, clockSynced: true, createdMs: T + 2_000 }, BATCH2_READINGS);
  const b3 = buildBatch(device, { seq: 3, prevHash: b2.hash, bootCounter: 2, clockSynced: true, createdMs: T + 62_000 }, BATCH3_READINGS, BATCH3_VERDICTS);
  const b4 = buildBatch(device, { seq: 4, prevHash: b3.hash, bootCounter: 2, clockSynced: true, createdMs: T + 70_000, drops: BATCH4_DROPS }, BATCH4_READINGS);
  // Issue 12: an output named "__proto__", which §4.4's pattern allows (JSON.parse makes it an own key). Outside the
  // chain (seq 100, prev not a held batch), so that no seq of the device is signed twice (version 3's vectors take seq 5).
  const protoBatch = buildBatch(device, { seq: 100, prevHash: new Uint8Array(32).fill(0x55), bootCounter: 2, clockSynced: true, createdMs: T + 80_000 }, BATCH5_READINGS, BATCH5_VERDICTS);
  const receiptFields = { dev: device.publicKey, seq: 1, hash: b1.hash, at: T + 1_200 };
  const receipt = signReceipt(receiver, receiptFields);
  const receiptEnv = canonicalDecode(receipt, 'receipt') as { body: Uint8Array; sig: Uint8Array };
  const wrongSeq = signReceipt(receiver, { ...receiptFields, seq: 2 });
  const byDevice = canonicalEncode({ body: receiptEnv.body, sig: device.sign(receiptEnv.body) });
  return {
    description: 'Test vectors of the edge-agent wire format (docs/wire-format.md). Byte strings are lowercase hex. Generated by scripts/make-test-vectors.ts; do not edit by hand.',
    batchFormat: BATCH_FORMAT,
    batchFormatV2: BATCH_FORMAT_V2,
    receiptFormat: RECEIPT_FORMAT,
    keys: { device: keyVector(device, DEVICE_SEED), receiver: keyVector(receiver, RECEIVER_SEED) },
    numbers: NUMBERS.map(([label, n]) => ({ label, value: Object.is(n, -0) ? '-0' : String(n), cbor: hex(canonicalEncode(n)) })),
    merkle: [0, 1, 2, 3, 5].map((n) => {
      const leaves = MERKLE_LEAVES.slice(0, n);
      return { leaves, leafHashes: leaves.map((l) => hex(leafHash(b(l)))), root: hex(merkleRoot(leaves.map(b))) };
    }),
    batches: [batchVector('batch-1', BATCH1_READINGS, b1), batchVector('batch-2', BATCH2_READINGS, b2), batchVector('batch-3', BATCH3_READINGS, b3, BATCH3_VERDICTS), batchVector('batch-4-with-drops', BATCH4_READINGS, b4)],
    receipt: {
      name: 'receipt-for-batch-1',
      fields: { dev: hex(receiptFields.dev), seq: receiptFields.seq, hash: hex(receiptFields.hash), at: receiptFields.at },
      bodyCbor: hex(receiptEnv.body),
      signature: hex(receiptEnv.sig),
      envelope: hex(receipt),
      base64: Buffer.from(receipt).toString('base64'),
    },
    negative: negativeVectors(device, receiver, b1, b3),
    standalone: [
      {
        ...batchVector('output-named-proto', BATCH5_READINGS, protoBatch, BATCH5_VERDICTS),
        description: 'a valid version-2 batch outside the chain (seq 100) whose verdict has outputs "__proto__" and "error" (§4.4): a verifier keeps both, and the leaf and vroot match',
      },
    ],
    negativeReceipts: [
      { name: 'receipt-for-another-seq', error: 'another batch', description: 'a valid receipt for seq 2, checked as the receipt of batch 1', envelope: hex(wrongSeq) },
      { name: 'receipt-signed-by-device', error: 'signature does not verify', description: 'the receipt body of batch 1 (rcv = receiver key) signed by the device key', envelope: hex(byDevice) },
      {
        name: 'receipt-rcv-identity-point',
        error: 'rcv must be a usable Ed25519 public key',
        description: 'the receipt of batch 1 with rcv = the identity point and the identity signature (R = identity, S = 0): refused whatever key is configured (§8)',
        envelope: hex(canonicalEncode({ body: canonicalEncode({ ...(canonicalDecode(receiptEnv.body, 'receipt body') as object), rcv: IDENTITY_POINT }), sig: IDENTITY_SIGNATURE })),
      },
    ],
    smallOrderKeys: {
      description: 'Ed25519 public keys (and signature R values) every verifier MUST refuse (§5): the 7 encodings of libsodium\'s small-order blocklist with either sign bit, and the non-canonical encodings y >= p',
      smallOrder: smallOrderEncodings().map(hex),
      nonCanonical: [0xed, 0xee, 0xef, 0xf0, 0xff].flatMap((first) => [`${first.toString(16)}${'ff'.repeat(30)}7f`, `${first.toString(16)}${'ff'.repeat(31)}`]),
    },
  };
}

export function renderVectors(): string {
  return JSON.stringify(makeVectors(), null, 2) + '\n';
}

/**
 * Annotated hex of one CBOR item, one line per map entry or array element (the worked example
 * of wire-format.md §9.1). The hex column concatenates back to the input.
 */
export function annotate(bytes: Uint8Array): string[] {
  const out: string[] = [];
  let pos = 0;
  // A map entry's key goes on the line of its value's first line.
  let key: { hex: string; text: string } | undefined;
  const line = (depth: number, from: number, to: number, what: string) => {
    const h = (key ? key.hex + ' ' : '') + hex(bytes.subarray(from, to));
    out.push(`${'  '.repeat(depth)}${h}`.padEnd(38) + ` # ${key ? `"${key.text}": ` : ''}${what}`);
    key = undefined;
  };
  const item = (depth: number): void => {
    const start = pos;
    const ib = bytes[pos]!;
    const major = ib >> 5;
    const ai = ib & 31;
    const argLen = ai < 24 ? 0 : 2 ** (ai - 24);
    const arg = ai < 24 ? ai : Number(BigInt('0x' + hex(bytes.subarray(pos + 1, pos + 1 + argLen))));
    pos += 1 + argLen;
    if (major === 0) line(depth, start, pos, `${arg}`);
    else if (major === 1) line(depth, start, pos, `${-1 - arg}`);
    else if (major === 2 || major === 3) {
      const what = major === 2 ? `bytes(${arg})` : `"${Buffer.from(bytes.subarray(pos, pos + arg)).toString('utf8')}"`;
      if (arg <= 12) line(depth, start, pos + arg, what);
      else {
        line(depth, start, pos, what);
        for (let k = 0; k < arg; k += 32) out.push(`${'  '.repeat(depth + 1)}${hex(bytes.subarray(pos + k, pos + Math.min(arg, k + 32)))}`);
      }
      pos += arg;
    } else if (major === 4 || major === 5) {
      line(depth, start, pos, major === 4 ? `array(${arg})` : `map(${arg})`);
      for (let k = 0; k < arg; k++) {
        if (major === 5) {
          const len = bytes[pos]! - 0x60; // keys are short text strings (§2)
          key = { hex: hex(bytes.subarray(pos, pos + 1 + len)), text: Buffer.from(bytes.subarray(pos + 1, pos + 1 + len)).toString('utf8') };
          pos += 1 + len;
        }
        item(depth + 1);
      }
    } else if (major === 7 && ai >= 25) line(depth, start, pos, `float${8 * argLen}(${String(canonicalDecode(bytes.subarray(start, pos), 'float'))})`);
    else if (major === 7 && (ai === 20 || ai === 21)) line(depth, start, pos, ai === 21 ? 'true' : 'false');
    else throw new Error(`annotate: unexpected initial byte ${ib.toString(16)}`);
  };
  item(0);
  return out;
}

export function repoRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('package.json not found above the script');
    dir = up;
  }
  return dir;
}

function main(args: string[]): void {
  const file = join(repoRoot(), 'docs', 'wire-format-vectors.json');
  const text = renderVectors();
  if (args.includes('--annotate')) {
    process.stdout.write(annotate(b(makeVectors().batches[0]!.bodyCbor)).join('\n') + '\n');
    return;
  }
  writeOrCheck(file, text, args.includes('--check'));
}

/** Writes a vectors file, or with `check` exits 1 when the file on disk differs from `text`. */
export function writeOrCheck(file: string, text: string, check: boolean): void {
  if (check) {
    const current = existsSync(file) ? readFileSync(file, 'utf8') : '';
    if (current !== text) {
      process.stderr.write(`${file} is out of date: run npm run vectors\n`);
      process.exitCode = 1;
    } else process.stdout.write(`${file} is up to date\n`);
    return;
  }
  writeFileSync(file, text);
  process.stdout.write(`wrote ${file}\n`);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

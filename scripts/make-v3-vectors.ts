/**
 * Generates docs/wire-format-v3-vectors.json, the test vectors of docs/wire-format.md §12
 * (version 3). The chain continues from batch 4 of the version-1/2 vectors
 * (docs/wire-format-vectors.json), so a verifier also checks a chain across versions. Everything
 * is fixed (seeds, readings, clocks, the sealing's ephemeral key and nonce): reproducible bytes.
 *   node dist/scripts/make-v3-vectors.js           writes the file
 *   node dist/scripts/make-v3-vectors.js --check   exits 1 if the file on disk differs
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { hex } from '../agent/identity/batch-format.js';
import { buildBatchV3, READING_FLAGS, VERDICT_FLAGS, type BatchContentV3, type SignedBatchV3 } from '../agent/identity/batch-v3.js';
import { canonicalDecode, canonicalEncode } from '../agent/identity/canonical.js';
import { batchCidText } from '../agent/identity/cid.js';
import { Identity } from '../agent/identity/keys.js';
import { sha256 } from '../agent/identity/merkle.js';
import { makeProof } from '../agent/identity/proof.js';
import { signReceipt } from '../agent/identity/receipt.js';
import { signUploadRequest } from '../agent/identity/upload-request.js';
import type { StoredReading } from '../agent/types.js';
import { DEVICE_SEED, makeVectors, RECEIVER_SEED, repoRoot, writeOrCheck } from './make-test-vectors.js';

const T = 1_763_000_000_000;
const SENSOR_SEED = Uint8Array.from({ length: 32 }, (_, k) => 0x41 + k);

/** Batch 5: readings with flags, a verdict with flags, two events, drops and a sensor attestation. */
const B5_READINGS: StoredReading[] = [
  { id: 15, sensor: 'pump1/temp', ts: T + 80_000, timeSource: 'sensor', value: 22.5, unit: 'Cel', source: 'serial', boot: 3 },
  { id: 16, sensor: 'pump1/temp', ts: T + 81_000, timeSource: 'sensor', value: 22.5, unit: 'Cel', source: 'serial', boot: 3, flags: READING_FLAGS.stuck },
  { id: 17, sensor: 'yard/rain', ts: T + 81_500, timeSource: 'gateway-unsynced', value: 900, unit: 'mm', source: 'mqtt', boot: 3, flags: READING_FLAGS.out_of_range | READING_FLAGS.clock_step },
];
const MODEL = Uint8Array.from({ length: 32 }, (_, k) => 0xa0 + (k % 16));

function content5(sensor: Identity): BatchContentV3 {
  const msg = new TextEncoder().encode('firmware-bridge digest of readings 15..16');
  return {
    readings: B5_READINGS,
    verdicts: [{ id: 4, key: 'pump1/temp', modelId: 'stream-ad', modelSha256: MODEL, windowStart: T + 50_000, ts: T + 81_000, readingId: 16, outputs: { error: 0.5 }, score: 0.1, value: 0.1, threshold: 0.9, alert: false, changed: false, flags: VERDICT_FLAGS.filled | VERDICT_FLAGS.unlearned }],
    events: [
      { id: 1, ts: T + 79_000, kind: 'clock.step', key: '', detail: { step_ms: -86_400_000, trusted: false } },
      { id: 2, ts: T + 80_500, kind: 'model.relearn', key: 'pump1/temp', detail: { model: 'stream-ad', by: 'operator' } },
    ],
    drops: [{ s: 'yard/rain', n: 3 }],
    attestations: [{ k: sensor.publicKey, msg, sig: sensor.sign(msg), r: [15, 16] }],
  };
}

/** A structure as JSON with byte strings as lowercase hex (Buffers arrive at the replacer already as {type, data}). */
const asJson = (x: unknown): unknown =>
  JSON.parse(
    JSON.stringify(x, (_k, v: unknown) => {
      if (v instanceof Uint8Array) return hex(v);
      if (v && typeof v === 'object' && (v as { type?: unknown }).type === 'Buffer') return hex(Uint8Array.from((v as { data: number[] }).data));
      return v;
    }),
  );

function batchJson(name: string, b: SignedBatchV3) {
  return {
    name,
    header: asJson(b.header),
    headerCbor: hex(b.headerBytes),
    data: asJson(b.data),
    dataCbor: hex(b.dataBytes!),
    hash: hex(b.hash),
    signature: hex(b.signature),
    envelope: hex(b.envelope),
    cid: batchCidText(b.envelope),
  };
}

export function makeV3Vectors() {
  const device = Identity.fromSeed(DEVICE_SEED);
  const receiver = Identity.fromSeed(RECEIVER_SEED);
  const sensor = Identity.fromSeed(SENSOR_SEED);
  const v12 = makeVectors();
  const b4hash = Uint8Array.from(Buffer.from(v12.batches[3]!.hash, 'hex'));
  const b5 = buildBatchV3(device, { seq: 5, prevHash: b4hash, bootCounter: 3, clockSynced: false, createdMs: T + 90_000 }, content5(sensor));
  const b6 = buildBatchV3(device, { seq: 6, prevHash: b5.hash, bootCounter: 3, clockSynced: true, createdMs: T + 100_000 }, { readings: [], drops: [{ s: 'pump1/temp', n: 2 }] });
  const sealFixed = { ephemeralSecret: Uint8Array.from({ length: 32 }, (_, k) => 0x61 + k), nonce: Uint8Array.from({ length: 24 }, (_, k) => 0x81 + k) };
  const b7 = buildBatchV3(
    device,
    { seq: 7, prevHash: b6.hash, bootCounter: 3, clockSynced: true, createdMs: T + 110_000 },
    { readings: [{ id: 18, sensor: 'pump1/temp', ts: T + 105_000, timeSource: 'sensor', value: 23, unit: 'Cel', source: 'mqtt', boot: 3 }] },
    { sealTo: receiver.publicKey, sealFixed },
  );
  const b8 = buildBatchV3(device, { seq: 8, prevHash: b7.hash, bootCounter: 3, clockSynced: true, createdMs: T + 200_000 }, content8());
  const receipt = signReceipt(receiver, { dev: device.publicKey, seq: 5, hash: b5.hash, at: T + 91_000 }, { dh: b5.header.dh, cid: batchCidText(b5.envelope), dur: 'disk' });
  const negative = [...negativeVectors(device, b5), ...summaryNegativeVectors(device, b8)];
  return {
    description: 'Test vectors of docs/wire-format.md §12 (version 3); keys as in wire-format-vectors.json, sensor seed 0x41..0x60',
    keys: { sensor: { seed: hex(SENSOR_SEED), publicKey: hex(sensor.publicKey), did: sensor.deviceId } },
    chainsFrom: { vectors: 'wire-format-vectors.json', batch: 'batch-4-with-drops', hash: hex(b4hash) },
    batches: [batchJson('batch-5-v3', b5), batchJson('batch-6-drops-only', b6), { ...batchJson('batch-7-sealed', b7), seal: { ephemeralSecret: hex(sealFixed.ephemeralSecret), nonce: hex(sealFixed.nonce) } }, batchJson('batch-8-adaptive', b8)],
    receipt: { batch: 'batch-5-v3', envelope: hex(receipt), base64: Buffer.from(receipt).toString('base64') },
    proofs: [makeProof(b5, 'reading', 1), makeProof(b5, 'verdict', 0), makeProof(b5, 'event', 1)],
    negative,
    uploadRequest: uploadRequestVector(receiver, device),
  };
}

/** §12.15: an upload request the device acts on, and one it must refuse (another device's). */
function uploadRequestVector(receiver: Identity, device: Identity) {
  const fields = { dev: device.publicKey, id: 'req-1', s: ['pump1/vib'], from: T + 120_000, to: T + 179_000, by: 'ticket-17', at: T + 300_000 };
  const envelope = signUploadRequest(receiver, fields);
  const other = signUploadRequest(receiver, { ...fields, dev: receiver.publicKey });
  return {
    description: 'signed by the receiver key of wire-format-vectors.json for its device; the device answers with report.full_rate {reason: upload, by: ticket-17, request: req-1}',
    envelope: hex(envelope),
    base64: Buffer.from(envelope).toString('base64'),
    body: { id: fields.id, s: fields.s, from: fields.from, to: fields.to, by: fields.by, at: fields.at },
    refused: [{ name: 'other-device', description: 'the same request for another dev (the receiver key itself)', envelope: hex(other) }],
  };
}

/**
 * Batch 8: adaptive reporting (§12.5): a reporting interval the device applied, a summary standing
 * for 60 kept readings of one minute, and the full-rate upload an alert started.
 */
function content8(): BatchContentV3 {
  return {
    readings: [{ id: 400, sensor: 'pump1/vib', ts: T + 185_000, timeSource: 'sensor', value: 2.25, source: 'serial', boot: 3 }],
    events: [
      { id: 3, ts: T + 120_000, kind: 'report.interval', key: 'pump1/vib', detail: { interval_ms: 10_000, status: 'applied', via: 'serial:serial', reason: 'healthy', device_interval_ms: 10_000, min_ms: 100, max_ms: 600_000 } },
      { id: 4, ts: T + 181_000, kind: 'report.summary', key: 'pump1/vib', detail: { interval_ms: 60_000, window_start: T + 120_000, count: 60, min: 0.75, max: 1.25, mean: 1.0078125, first_t: T + 120_000, last_t: T + 179_000, first_id: 300, last_id: 359 } },
      { id: 5, ts: T + 186_000, kind: 'report.full_rate', key: 'pump1/vib', detail: { reason: 'alert', by: 'stream-ad', from_t: T + 65_000, to_t: Number.MAX_SAFE_INTEGER, released: 0 } },
    ],
  };
}

/** Editing a batch's header or data and signing it again with the device key: how a negative vector is made. */
function editorsOf(device: Identity, base: SignedBatchV3) {
  const hdr = () => canonicalDecode(base.headerBytes, 'h') as Record<string, unknown>;
  const data = () => canonicalDecode(base.dataBytes!, 'd') as Record<string, unknown[]>;
  const resigned = (h: Record<string, unknown>, d: Uint8Array = base.dataBytes!) => {
    const bytes = canonicalEncode(h);
    return canonicalEncode({ hdr: bytes, sig: device.sign(bytes), data: d });
  };
  const withData = (edit: (d: Record<string, unknown[]>) => void) => {
    const d = data();
    edit(d);
    const bytes = canonicalEncode(d);
    const h = hdr();
    h.dh = sha256(bytes);
    return resigned(h, bytes);
  };
  return { hdr, resigned, withData };
}

/** §12.5: a report.summary that cannot stand for real readings is malformed, however well signed. */
function summaryNegativeVectors(device: Identity, b8: SignedBatchV3) {
  const { withData } = editorsOf(device, b8);
  const summaryDetail = (d: Record<string, unknown[]>) => (d.ev![1] as Record<string, Record<string, unknown>>).d!;
  const list = [
    { name: 'summary-mean-above-max', reason: 'malformed', description: 'batch 8 report.summary with mean 2 above max 1.25, dh and signature redone', envelope: withData((d) => (summaryDetail(d).mean = 2)) },
    { name: 'summary-count-zero', reason: 'malformed', description: 'batch 8 report.summary with count 0, dh and signature redone', envelope: withData((d) => (summaryDetail(d).count = 0)) },
    { name: 'summary-outside-window', reason: 'malformed', description: 'batch 8 report.summary with last_t past its window, dh and signature redone', envelope: withData((d) => (summaryDetail(d).last_t = T + 180_000)) },
  ];
  return list.map((x) => ({ ...x, envelope: hex(x.envelope) }));
}

/** Envelopes that MUST fail §12.9 with `reason`; re-signed by the device where the change is inside the header. */
function negativeVectors(device: Identity, b5: SignedBatchV3) {
  const { hdr, resigned, withData } = editorsOf(device, b5);
  const flipped = Uint8Array.from(b5.dataBytes!);
  flipped[flipped.length - 1]! ^= 1;
  const list = [
    { name: 'data-changed', reason: 'bad-data-hash', description: 'batch 5 with the last data byte flipped, header and signature unchanged', envelope: canonicalEncode({ hdr: b5.headerBytes, sig: b5.signature, data: flipped }) },
    { name: 'header-changed', reason: 'bad-signature', description: 'batch 5 header with boot 4 instead of 3, original signature', envelope: canonicalEncode({ hdr: canonicalEncode({ ...hdr(), boot: 4 }), sig: b5.signature, data: b5.dataBytes! }) },
    { name: 'count-wrong', reason: 'bad-count', description: 'header n = 4 (3 readings), re-signed', envelope: resigned({ ...hdr(), n: 4 }) },
    { name: 'root-wrong', reason: 'bad-merkle-root', description: 'header eroot of zero bytes, re-signed', envelope: resigned({ ...hdr(), eroot: new Uint8Array(32) }) },
    { name: 'unknown-header-key', reason: 'malformed', description: 'header with an extra key x, re-signed', envelope: resigned({ ...hdr(), x: 1 }) },
    { name: 'unknown-flag-bit', reason: 'malformed', description: 'reading 16 with f = 1024 (bit 10), dh and signature redone', envelope: withData((d) => ((d.r![1] as Record<string, unknown>).f = 1024)) },
    { name: 'ids-not-increasing', reason: 'malformed', description: 'events in the order 2, 1, dh and signature redone', envelope: withData((d) => d.ev!.reverse()) },
    { name: 'salt-in-plain-batch', reason: 'malformed', description: 'reading 15 with a salt z in a plain batch, dh and signature redone', envelope: withData((d) => ((d.r![0] as Record<string, unknown>).z = new Uint8Array(16))) },
    { name: 'attestation-forged', reason: 'bad-attestation', description: 'the attestation signature replaced by the device signature of its message, dh and signature redone', envelope: withData((d) => { const a = d.att![0] as Record<string, Uint8Array>; a.sig = device.sign(a.msg!); }) },
  ];
  return list.map((x) => ({ ...x, envelope: hex(x.envelope) }));
}


export function renderV3Vectors(): string {
  return JSON.stringify(makeV3Vectors(), null, 2) + '\n';
}

function main(args: string[]): void {
  writeOrCheck(join(repoRoot(), 'docs', 'wire-format-v3-vectors.json'), renderV3Vectors(), args.includes('--check'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

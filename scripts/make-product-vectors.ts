/**
 * Generates docs/wire-format-product-vectors.json, the test vectors of docs/wire-format.md §12.14
 * (data products): two plain version-3 batches of the §9 device, a product of one sensor's
 * readings with its signed manifest, and products that MUST fail with their reason. Everything is
 * fixed (seed, readings, the manifest's `at`), and Ed25519 is deterministic: reproducible bytes.
 *   node dist/scripts/make-product-vectors.js           writes the file
 *   node dist/scripts/make-product-vectors.js --check   exits 1 if the file on disk differs
 */
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { fromV3 } from '../agent/identity/batch-any.js';
import { hex } from '../agent/identity/batch-format.js';
import { buildBatchV3 } from '../agent/identity/batch-v3.js';
import { canonicalDecode, canonicalEncode } from '../agent/identity/canonical.js';
import { batchCidText } from '../agent/identity/cid.js';
import { proveElement } from '../agent/identity/element-proof.js';
import { Identity } from '../agent/identity/keys.js';
import { buildProduct, type DataProduct } from '../agent/identity/product.js';
import type { StoredReading } from '../agent/types.js';
import { DEVICE_SEED, repoRoot, writeOrCheck } from './make-test-vectors.js';

const T = 1_763_000_000_000;
const SENSOR = 'pump1/temp';

const reading = (id: number): StoredReading => ({
  id,
  sensor: id % 2 === 1 ? SENSOR : 'yard/rain',
  ts: T + id * 1000,
  timeSource: 'sensor',
  value: id % 2 === 1 ? 20 + id / 4 : id * 10,
  unit: id % 2 === 1 ? 'Cel' : 'mm',
  source: 'mqtt',
  boot: 1,
});

/** Manifest fields as JSON: byte strings in hex, like the other vector files. */
const asJson = (v: unknown): unknown =>
  v instanceof Uint8Array ? hex(v) : Array.isArray(v) ? v.map(asJson) : v && typeof v === 'object' ? Object.fromEntries(Object.entries(v).map(([k, x]) => [k, asJson(x)])) : v;

export function makeProductVectors() {
  const device = Identity.fromSeed(DEVICE_SEED);
  const b1 = buildBatchV3(device, { seq: 1, prevHash: new Uint8Array(32), bootCounter: 1, clockSynced: true, createdMs: T + 10_000 }, { readings: [1, 2, 3, 4, 5, 6].map(reading) });
  const b2 = buildBatchV3(device, { seq: 2, prevHash: b1.hash, bootCounter: 1, clockSynced: true, createdMs: T + 20_000 }, { readings: [7, 8, 9, 10].map(reading) });
  const from = T + 2_000;
  const to = T + 9_000;
  const items = [b1, b2].flatMap((b) =>
    b.data!.r.filter((r) => r.s === SENSOR && r.t >= from && r.t <= to).map((r) => ({ seq: b.header.seq, proof: proveElement(fromV3(b), 'reading', r.i) })),
  );
  const product = buildProduct(device, SENSOR, from, to, items, T + 30_000);
  const copy = (): DataProduct => JSON.parse(JSON.stringify(product)) as DataProduct;
  const removed = copy();
  removed.readings.splice(1, 1);
  const changed = copy();
  const leaf = canonicalDecode(new Uint8Array(Buffer.from(changed.readings[0]!.leaf, 'hex')), 'leaf') as Record<string, unknown>;
  changed.readings[0]!.leaf = hex(canonicalEncode({ ...leaf, v: 99 }));
  const manifest = canonicalDecode(new Uint8Array(Buffer.from(product.manifest, 'hex')), 'manifest') as { items: number[][] };
  const shortened = copy();
  shortened.readings.splice(1, 1);
  shortened.manifest = hex(canonicalEncode({ ...manifest, items: manifest.items.filter((_, k) => k !== 1) }));
  const widened = copy();
  widened.to = T + 100_000;
  return {
    description: 'Test vectors of docs/wire-format.md §12.14 (data products); the device key of wire-format-vectors.json',
    device: device.deviceId,
    batches: [b1, b2].map((b) => ({ seq: b.header.seq, hash: hex(b.hash), cid: batchCidText(b.envelope), envelope: hex(b.envelope) })),
    product,
    manifest: asJson(manifest),
    negative: [
      { name: 'reading-removed', reason: 'incomplete', description: 'the second reading left out, the manifest as signed', product: removed },
      { name: 'reading-changed', reason: 'bad-merkle-root', description: 'the first reading with v = 99', product: changed },
      { name: 'manifest-shortened', reason: 'bad-signature', description: 'the second reading left out of the readings and the manifest items, not signed again', product: shortened },
      { name: 'range-widened', reason: 'malformed', description: 'to differs from the signed manifest', product: widened },
    ],
  };
}

export function renderProductVectors(): string {
  return JSON.stringify(makeProductVectors(), null, 2) + '\n';
}

function main(args: string[]): void {
  const file = join(repoRoot(), 'docs', 'wire-format-product-vectors.json');
  const text = renderProductVectors();
  writeOrCheck(file, text, args.includes('--check'));
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) main(process.argv.slice(2));

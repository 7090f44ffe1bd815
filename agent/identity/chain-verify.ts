import { publicKeyFromDeviceId } from './device-id.js';
import { verifyAnyBatchEnvelope, type AnyBatch } from './batch-any.js';
import { hex, toBatchReading, ZERO_HASH, type BatchReading } from './batch-format.js';
import { verifyReceipt } from './receipt.js';
import { canonicalEncode } from './canonical.js';
import type { Db } from '../store/database.js';
import type { StoredReading } from '../types.js';
import { BatchStore } from '../store/batch-store.js';
import { getMeta } from '../store/meta.js';
import { BatchContents } from '../store/audit-queries.js';
import { toBatchVerdicts, type BatchModelRef, type BatchVerdict } from './verdict-format.js';

export interface ChainReport {
  device: string | null;
  batches: number;
  readings: number;
  delivered: number;
  receiptsVerified: number;
  deliveredWithoutReceipt: number;
  problems: string[];
}

const same = (a: Uint8Array, b: Uint8Array) => Buffer.from(a).equals(Buffer.from(b));
const readingBytes = (r: BatchReading) => Buffer.from(canonicalEncode(r));
/** A stored reading as its batch's version encodes it: version 3 adds the flags (§12.3). */
const asSigned = (r: StoredReading, version: number): BatchReading => (version === 3 && r.flags ? ({ ...toBatchReading(r), f: r.flags } as BatchReading) : toBatchReading(r));
/** A verdict with its model reference resolved, so verdicts from different model tables compare. */
const verdictBytes = (v: BatchVerdict, models: readonly BatchModelRef[]) => Buffer.from(canonicalEncode({ ...v, m: models[v.m] ?? null }));

/**
 * Re-verifies a whole agent store: every batch's signature and Merkle root, the hash chain
 * from batch to batch, that readings still in the buffer are exactly those the batch signed
 * (an edited row is caught), and every stored receipt's signature.
 */
export function verifyStoreChain(db: Db, opts: { receiverKey?: Uint8Array } = {}): ChainReport {
  const device = getMeta(db, 'device_id') ?? null;
  const deviceKey = device ? publicKeyFromDeviceId(device) : undefined;
  const store = new BatchStore(db);
  const report: ChainReport = { device, batches: 0, readings: 0, delivered: 0, receiptsVerified: 0, deliveredWithoutReceipt: 0, problems: [] };
  const contents = new BatchContents(db);
  let prev: { seq: number; hash: Uint8Array } | undefined;

  for (const row of store.all()) {
    const where = `batch ${row.seq}`;
    report.batches++;
    let batch;
    try {
      batch = verifyAnyBatchEnvelope(new Uint8Array(row.envelope));
    } catch (err) {
      report.problems.push(`${where}: ${(err as Error).message}`);
      prev = { seq: row.seq, hash: new Uint8Array(row.hash) };
      continue;
    }
    const body = batch.body;
    report.readings += body.n;
    if (body.seq !== row.seq) report.problems.push(`${where}: envelope says seq ${body.seq}`);
    if (deviceKey && !same(body.dev, deviceKey)) report.problems.push(`${where}: signed by another device key`);
    if (!same(batch.hash, row.hash)) report.problems.push(`${where}: stored hash differs from the envelope's`);
    const expectedPrev = prev ? (prev.seq === row.seq - 1 ? prev.hash : undefined) : row.seq === 1 ? ZERO_HASH : undefined;
    if (prev && prev.seq !== row.seq - 1) report.problems.push(`${where}: follows batch ${prev.seq} (gap in the chain)`);
    if (expectedPrev && !same(body.prev, expectedPrev)) report.problems.push(`${where}: prev hash ${hex(body.prev).slice(0, 16)} does not link to batch ${row.seq - 1}`);
    prev = { seq: row.seq, hash: batch.hash };

    // A sealed batch's data stays closed here (the agent does not hold the network key): its
    // header, signature and chain were checked above; its readings are compared by the receiver.
    if (!batch.sealed) compareContents(row.seq, batch.version, body, contents, report.problems);

    if (row.state === 'delivered') {
      report.delivered++;
      const receipt = store.receipt(row.seq);
      if (!receipt) report.deliveredWithoutReceipt++;
      else {
        const receiverKey = opts.receiverKey ?? new Uint8Array(receipt.receiver_key);
        try {
          verifyReceipt(new Uint8Array(receipt.envelope), { receiverKey, device: body.dev, seq: body.seq, batchHash: batch.hash, envelope: batch.envelope });
          report.receiptsVerified++;
        } catch (err) {
          report.problems.push(`${where}: receipt: ${(err as Error).message}`);
        }
      }
    }
  }
  return report;
}

/** Rows still in the buffer must be byte-identical to what batch `seq` signed (an edited row is caught). */
function compareContents(seq: number, version: number, body: AnyBatch['body'], contents: BatchContents, problems: string[]): void {
  const where = `batch ${seq}`;
  const signed = new Map(body.r.map((r) => [r.i, r]));
  for (const r of contents.readings(seq)) {
    const s = signed.get(r.id);
    if (!s) problems.push(`${where}: stored reading ${r.id} is marked as in this batch but was not signed in it`);
    else if (!readingBytes(asSigned(r, version)).equals(readingBytes(s))) problems.push(`${where}: stored reading ${r.id} (sensor ${r.sensor}) differs from the signed one`);
  }
  const signedVerdicts = new Map((body.vd ?? []).map((v) => [v.i, verdictBytes(v, body.m ?? [])]));
  const rows = contents.verdicts(seq);
  const stored = toBatchVerdicts(rows);
  stored.vd.forEach((v, k) => {
    const s = signedVerdicts.get(v.i);
    const flags = rows[k]!.flags;
    const mine = version === 3 && flags ? { ...v, f: flags } : v;
    if (!s) problems.push(`${where}: stored verdict ${v.i} is marked as in this batch but was not signed in it`);
    else if (!verdictBytes(mine, stored.m).equals(s)) problems.push(`${where}: stored verdict ${v.i} (key ${v.k}) differs from the signed one`);
  });
}

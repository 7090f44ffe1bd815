import { CarBlockIterator } from '@ipld/car/iterator';
import { CarWriter } from '@ipld/car/writer';
import { closeSync, createReadStream, createWriteStream, openSync, readSync, statSync } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import { varint } from 'multiformats';
import { verifyAnyBatchEnvelope } from './batch-any.js';
import { BatchVerificationError, hex, ZERO_HASH } from './batch-format.js';
import { V3_LIMITS } from './batch-v3.js';
import { batchCid } from './cid.js';
import { deviceIdFromPublicKey } from './device-id.js';

/**
 * Batches as a CARv1 archive (docs/wire-format.md §12.11; the IPLD CARv1 spec): each envelope one
 * raw block under its CID, the newest batch as the root, written and read with @ipld/car so any
 * IPFS node or Filecoin deal tool takes the file as it is.
 */

/** A block is one envelope (§12.9 limit) and its CID (36 bytes for CIDv1 raw sha2-256); the header a few roots. */
const MAX_SECTION_BYTES = V3_LIMITS.envelopeBytes + 64;
const MAX_HEADER_BYTES = 64 * 1024;

/** Writes the envelopes (in seq order) to `path`; `root` is the envelope whose CID goes in the header. */
export async function writeBatchCar(path: string, root: Uint8Array, envelopes: Iterable<{ envelope: Uint8Array }>): Promise<{ blocks: number; bytes: number }> {
  const { writer, out } = CarWriter.create([batchCid(root)]);
  const file = createWriteStream(path);
  const done = pipeline(Readable.from(out), file);
  let blocks = 0;
  for (const { envelope } of envelopes) {
    await writer.put({ cid: batchCid(envelope), bytes: envelope });
    blocks++;
  }
  await writer.close();
  await done;
  return { blocks, bytes: statSync(path).size };
}

export interface CarBlockReport {
  cid: string;
  seq?: number;
  version?: 1 | 2 | 3;
  sealed?: boolean;
  readings?: number;
}

export interface CarReport {
  file: string;
  roots: string[];
  blocks: CarBlockReport[];
  device: string | null;
  firstSeq: number | null;
  lastSeq: number | null;
  problems: string[];
}

/**
 * Walks the section lengths of a CARv1 file before any decoder sees it, so a length prefix that
 * claims gigabytes is refused without reading (or allocating) them.
 */
function checkSectionSizes(path: string): void {
  const fd = openSync(path, 'r');
  try {
    const size = statSync(path).size;
    const head = Buffer.alloc(10);
    let offset = 0;
    let first = true;
    while (offset < size) {
      const got = readSync(fd, head, 0, 10, offset);
      let length: number;
      let width: number;
      try {
        [length, width] = varint.decode(head.subarray(0, got));
      } catch {
        throw new Error(`bad section length at byte ${offset}`);
      }
      const max = first ? MAX_HEADER_BYTES : MAX_SECTION_BYTES;
      if (length > max) throw new Error(`${first ? 'header' : 'block'} at byte ${offset} claims ${length} bytes, over the ${max} a batch archive allows`);
      if (offset + width + length > size) throw new Error(`${first ? 'header' : 'block'} at byte ${offset} runs past the end of the file (truncated archive)`);
      offset += width + length;
      first = false;
    }
  } finally {
    closeSync(fd);
  }
}

/**
 * Checks every block of a CAR file of batches: its CID is CIDv1 raw sha2-256 of exactly its bytes,
 * it is a valid batch (§6.1 or §12.9; a sealed batch's header, signature and `ch`), one device
 * throughout, and the chain inside (§6.2): consecutive seqs, each `prev` the hash of the batch
 * before, no seq twice. Problems are collected, not thrown, so the operator sees them all.
 */
export async function verifyBatchCar(path: string): Promise<CarReport> {
  const report: CarReport = { file: path, roots: [], blocks: [], device: null, firstSeq: null, lastSeq: null, problems: [] };
  try {
    checkSectionSizes(path);
  } catch (err) {
    report.problems.push(`not a readable CARv1 file: ${(err as Error).message}`);
    return report;
  }
  let iterator: CarBlockIterator;
  try {
    iterator = await CarBlockIterator.fromIterable(createReadStream(path));
  } catch (err) {
    report.problems.push(`not a CARv1 file: ${(err as Error).message}`);
    return report;
  }
  if (iterator.version !== 1) report.problems.push(`CAR version ${iterator.version}, expected 1`);
  const roots = await iterator.getRoots();
  report.roots = roots.map((r) => r.toString());
  const bySeq = new Map<number, { hash: Uint8Array; prev: Uint8Array }>();
  const cids = new Set<string>();
  let dev: Uint8Array | undefined;
  try {
    for await (const block of iterator) {
      const text = block.cid.toString();
      const entry: CarBlockReport = { cid: text };
      report.blocks.push(entry);
      const where = `block ${report.blocks.length} (${text})`;
      if (!batchCid(block.bytes).equals(block.cid)) {
        report.problems.push(`${where}: its CID is not CIDv1 raw sha2-256 of its bytes (the block was altered, or is not a batch block)`);
        continue;
      }
      cids.add(text);
      let batch;
      try {
        batch = verifyAnyBatchEnvelope(block.bytes);
      } catch (err) {
        if (!(err instanceof BatchVerificationError)) throw err;
        report.problems.push(`${where}: invalid batch: ${err.reason}: ${err.message}`);
        continue;
      }
      const { seq, prev } = batch.body;
      Object.assign(entry, { seq, version: batch.version, sealed: batch.sealed, readings: batch.body.n });
      if (!dev) dev = batch.body.dev;
      else if (!Buffer.from(dev).equals(Buffer.from(batch.body.dev))) report.problems.push(`${where}: batch ${seq} is signed by another device (${deviceIdFromPublicKey(batch.body.dev)})`);
      const held = bySeq.get(seq);
      if (held && !Buffer.from(held.hash).equals(Buffer.from(batch.hash))) report.problems.push(`${where}: seq ${seq} appears twice with different hashes (a fork)`);
      bySeq.set(seq, { hash: batch.hash, prev });
    }
  } catch (err) {
    report.problems.push(`archive ends badly after block ${report.blocks.length}: ${(err as Error).message}`);
  }
  for (const r of report.roots) if (!cids.has(r)) report.problems.push(`root ${r} is not a block of this archive`);
  report.device = dev ? deviceIdFromPublicKey(dev) : null;
  const seqs = [...bySeq.keys()].sort((a, b) => a - b);
  if (seqs.length === 0) {
    report.problems.push('the archive holds no valid batch');
    return report;
  }
  report.firstSeq = seqs[0]!;
  report.lastSeq = seqs[seqs.length - 1]!;
  if (seqs[0] === 1 && !Buffer.from(bySeq.get(1)!.prev).equals(Buffer.from(ZERO_HASH))) report.problems.push('batch 1 has a non-zero prev');
  for (let k = 1; k < seqs.length; k++) {
    const [a, b] = [seqs[k - 1]!, seqs[k]!];
    if (b !== a + 1) report.problems.push(`batches ${a + 1}..${b - 1} are missing (the archive's range has a gap)`);
    else if (!Buffer.from(bySeq.get(b)!.prev).equals(Buffer.from(bySeq.get(a)!.hash))) report.problems.push(`batch ${b}: prev ${hex(bySeq.get(b)!.prev).slice(0, 16)}… is not the hash of batch ${a}`);
  }
  return report;
}

/** True when the bytes start like a CARv1 file rather than a batch envelope (a CBOR map, 0xa2/0xa3) or JSON. */
export function looksLikeCar(bytes: Uint8Array): boolean {
  return bytes.length > 0 && bytes[0] !== 0xa2 && bytes[0] !== 0xa3 && bytes[0] !== 0x7b;
}

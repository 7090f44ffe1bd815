import type { Command } from 'commander';
import { writeFileSync } from 'node:fs';
import { loadConfig, type LoadedConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { writeBatchCar } from '../identity/car-archive.js';
import { batchCidText } from '../identity/cid.js';
import { buildProduct, PRODUCT_MAX_READINGS } from '../identity/product.js';
import { StoreProofs } from '../store/store-proofs.js';
import { batchEnvelopes, heldBatchRange, newestBatch, oldestHeldBatch, sensorReadingsInRange } from '../store/batch-contents.js';
import { BatchStore } from '../store/batch-store.js';
import { openDatabase, type Db } from '../store/database.js';
import { absDir, dataDirOption, isoTime, timeArg } from './common.js';
import { asAgentError, deviceKeyLoader } from './proof.js';

interface ExportOptions {
  dataDir: string;
  seq?: number;
  out?: string;
  sensor?: string;
  from?: number;
  to?: number;
  proofs?: boolean;
  car?: string;
  fromSeq?: number;
  toSeq?: number;
}

const positive = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new AgentError('USAGE', `${flag}: expected a positive integer, got "${v}"`);
  return n;
};

function exportOne(db: Db, loaded: LoadedConfig, seq: number, out: string): void {
  const row = new BatchStore(db).get(seq);
  if (!row) throw new AgentError('USAGE', `no batch ${seq} in ${loaded.config.store.path}`);
  writeFileSync(out, row.envelope);
  process.stdout.write(`batch ${seq} (${row.reading_count} readings, ${row.envelope.length} bytes, cid ${batchCidText(row.envelope)}) written to ${out}\n`);
}

/**
 * A data product (docs/wire-format.md §12.14): every reading of the sensor in [from, to] that the
 * store holds in signed batches, each with its proof, and the device-signed manifest naming them.
 * Refused, rather than silently incomplete, when some of them are not provable yet or any more.
 */
function exportProduct(db: Db, loaded: LoadedConfig, opts: Required<Pick<ExportOptions, 'sensor' | 'from' | 'to' | 'out'>>): void {
  if (opts.from > opts.to) throw new AgentError('USAGE', `--from ${isoTime(opts.from)} is after --to ${isoTime(opts.to)}`);
  const oldest = oldestHeldBatch(db);
  if (oldest && oldest.seq > 1 && opts.from < oldest.t0) {
    throw new AgentError(
      'USAGE',
      `batches before ${oldest.seq} were deleted after delivery (store.retain_delivered_hours), so readings from ${isoTime(opts.from)} may be gone: ` +
        `start --from at ${isoTime(oldest.t0)} or later, or get the older batches from the receiver`,
    );
  }
  const refs = sensorReadingsInRange(db, opts.sensor, opts.from, opts.to, PRODUCT_MAX_READINGS);
  if (refs.length > PRODUCT_MAX_READINGS) throw new AgentError('USAGE', `more than ${PRODUCT_MAX_READINGS} readings of ${opts.sensor} in the range: export a shorter range`);
  if (refs.length === 0) throw new AgentError('USAGE', `no readings of sensor ${opts.sensor} between ${isoTime(opts.from)} and ${isoTime(opts.to)}`);
  const unbatched = refs.filter((r) => r.batchSeq === null).length;
  if (unbatched > 0) {
    throw new AgentError('USAGE', `${unbatched} readings of ${opts.sensor} in the range are not in a signed batch yet: end the range earlier (--to) or export after the next batch is cut`);
  }
  const proofs = new StoreProofs(db, deviceKeyLoader(loaded));
  let items;
  try {
    items = refs.map((r) => proofs.prove('reading', r.id));
  } catch (err) {
    throw asAgentError(err);
  }
  items.sort((a, b) => a.seq - b.seq || a.proof.index - b.proof.index);
  const product = buildProduct(deviceKeyLoader(loaded)(), opts.sensor, opts.from, opts.to, items);
  writeFileSync(opts.out, `${JSON.stringify(product)}\n`);
  const cids = new Map(items.map((i) => [i.seq, i.proof.cid]));
  process.stdout.write(`data product: ${items.length} readings of ${opts.sensor}, ${isoTime(opts.from)} .. ${isoTime(opts.to)}, from ${cids.size} batches, written to ${opts.out}\n`);
  for (const [seq, cid] of cids) process.stdout.write(`  batch ${seq}  cid ${cid}\n`);
}

async function exportCar(db: Db, loaded: LoadedConfig, file: string, fromSeq?: number, toSeq?: number): Promise<void> {
  const held = heldBatchRange(db);
  if (!held) throw new AgentError('USAGE', `no batches in ${loaded.config.store.path} yet`);
  const from = fromSeq ?? held.first;
  const to = toSeq ?? held.last;
  if (from > to) throw new AgentError('USAGE', `--from-seq ${from} is after --to-seq ${to}`);
  const newest = newestBatch(db, from, to);
  if (!newest) throw new AgentError('USAGE', `no batches between ${from} and ${to} (the store holds ${held.first}..${held.last})`);
  const root = newest.envelope;
  const r = await writeBatchCar(file, root, batchEnvelopes(db, from, to));
  process.stdout.write(`CARv1 archive of ${r.blocks} batches (${from}..${to}, ${r.bytes} bytes) written to ${file}\n  root cid ${batchCidText(root)}\n`);
}

export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description(
      'write signed batches for others to check: one batch (--seq, its CBOR envelope), a data product of one sensor with a proof per reading (--sensor --from --to --proofs), or a CARv1 archive of batches (--car)',
    )
    .addOption(dataDirOption())
    .option('--seq <n>', 'one batch: its sequence number', positive('--seq'))
    .option('--sensor <id>', 'data product: the sensor whose readings to export')
    .option('--from <time>', 'data product: first reading time (RFC 3339 or ms since the epoch)', timeArg('--from'))
    .option('--to <time>', 'data product: last reading time (RFC 3339 or ms since the epoch)', timeArg('--to'))
    .option('--proofs', 'data product: each reading with its proof and a device-signed manifest (docs/wire-format.md §12.14)')
    .option('--car <file>', 'CARv1 archive of batches (every envelope a raw block under its CID), for an IPFS node or a Filecoin deal')
    .option('--from-seq <n>', 'CAR archive: first batch (default the oldest held)', positive('--from-seq'))
    .option('--to-seq <n>', 'CAR archive: last batch (default the newest)', positive('--to-seq'))
    .option('-o, --out <file>', 'file to write (--seq, --sensor)')
    .action(async (opts: ExportOptions) => {
      const modes = [opts.seq !== undefined, opts.sensor !== undefined, opts.car !== undefined].filter(Boolean).length;
      if (modes !== 1) throw new AgentError('USAGE', 'give one of --seq N, --sensor ID (with --from, --to, --proofs) or --car FILE');
      if ((opts.fromSeq !== undefined || opts.toSeq !== undefined) && opts.car === undefined) throw new AgentError('USAGE', '--from-seq and --to-seq go with --car');
      if (opts.car === undefined && !opts.out) throw new AgentError('USAGE', '-o FILE is needed with --seq and --sensor');
      if (opts.sensor !== undefined) {
        if (opts.from === undefined || opts.to === undefined) throw new AgentError('USAGE', '--sensor needs --from and --to');
        if (!opts.proofs) throw new AgentError('USAGE', '--sensor needs --proofs: a data product is its readings with their proofs');
      } else if (opts.from !== undefined || opts.to !== undefined || opts.proofs) throw new AgentError('USAGE', '--from, --to and --proofs go with --sensor');
      const loaded = loadConfig(absDir(opts.dataDir));
      const db = openDatabase(loaded.resolvePath(loaded.config.store.path), { readonly: true });
      try {
        if (opts.seq !== undefined) exportOne(db, loaded, opts.seq, opts.out!);
        else if (opts.sensor !== undefined) exportProduct(db, loaded, { sensor: opts.sensor, from: opts.from!, to: opts.to!, out: opts.out! });
        else await exportCar(db, loaded, opts.car!, opts.fromSeq, opts.toSeq);
      } finally {
        db.close();
      }
    });
}

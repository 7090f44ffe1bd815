import type { Command } from 'commander';
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { verifyAnyBatchEnvelope } from '../identity/batch-any.js';
import { BatchVerificationError, hex } from '../identity/batch-format.js';
import { looksLikeCar, verifyBatchCar } from '../identity/car-archive.js';
import { batchCidText } from '../identity/cid.js';
import { checkAttestationBindings } from '../identity/sensor-attestation.js';
import { verifyStoreChain } from '../identity/chain-verify.js';
import { MAX_ENVELOPE_BYTES } from '../identity/wire-limits.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import { openDatabase } from '../store/database.js';
import { absDir, isoTime, printJson } from './common.js';
import { verifyProofFile } from './proof.js';

interface VerifyOptions {
  dataDir?: string;
  receiverKey?: string;
  json?: boolean;
}

/** The first byte tells a proof or data product (JSON), a CARv1 archive and a batch envelope apart. */
function firstByte(file: string): number | undefined {
  const fd = openSync(file, 'r');
  try {
    const b = Buffer.alloc(1);
    return readSync(fd, b, 0, 1, 0) === 1 ? b[0] : undefined;
  } finally {
    closeSync(fd);
  }
}

async function verifyCarFile(file: string, json: boolean): Promise<void> {
  const r = await verifyBatchCar(file);
  if (json) printJson({ valid: r.problems.length === 0, ...r });
  else {
    process.stdout.write(
      `CARv1 archive ${file}: ${r.blocks.length} blocks, batches ${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'} of ${r.device ?? '-'}\n  roots ${r.roots.join(', ') || '-'}\n`,
    );
    for (const p of r.problems) process.stdout.write(`PROBLEM ${p}\n`);
    process.stdout.write(r.problems.length === 0 ? 'every CID, signature and chain link OK\n' : `archive has ${r.problems.length} problem(s)\n`);
  }
  if (r.problems.length > 0) process.exitCode = 1;
}

async function verifyFile(file: string, json: boolean): Promise<void> {
  if (!existsSync(file)) throw new AgentError('USAGE', `batch file ${file} not found`);
  const first = firstByte(file);
  if (first === 0x7b) return verifyProofFile(file, { json });
  if (first !== undefined && looksLikeCar(Uint8Array.of(first))) return verifyCarFile(file, json);
  try {
    // Never read more than an envelope can be (wire-format.md §6.3).
    const size = statSync(file).size;
    if (size > MAX_ENVELOPE_BYTES) throw new BatchVerificationError('malformed', `envelope: ${size} bytes, more than the limit of ${MAX_ENVELOPE_BYTES}`);
    const b = verifyAnyBatchEnvelope(new Uint8Array(readFileSync(file)));
    // wire-format.md §12.7 / PROTOCOL.md §3.9: sensor attestations must bind the readings they name.
    const unbound = b.v3?.data ? checkAttestationBindings(b.v3.data) : [];
    if (unbound.length > 0) throw new BatchVerificationError('bad-attestation', unbound[0]!);
    const summary = {
      valid: true,
      file,
      version: b.version,
      cid: batchCidText(b.envelope),
      sealed: b.sealed,
      events: b.events.length,
      device: deviceIdFromPublicKey(b.body.dev),
      seq: b.body.seq,
      hash: hex(b.hash),
      prev: hex(b.body.prev),
      readings: b.body.n,
      boot: b.body.boot,
      clock_synced: b.body.sync,
      t0: b.body.t0,
      t1: b.body.t1,
    };
    if (json) printJson(summary);
    else {
      process.stdout.write(
        `valid batch ${summary.seq} from ${summary.device} (version ${summary.version}${summary.sealed ? ', sealed: header checked, data not opened' : ''})\n` +
          `  ${summary.readings} readings${summary.events > 0 ? `, ${summary.events} events` : ''} ${isoTime(summary.t0)} .. ${isoTime(summary.t1)}\n  cid ${summary.cid}\n` +
          `  hash ${summary.hash}\n  prev ${summary.prev}\n  boot ${summary.boot}, clock ${summary.clock_synced ? 'synchronised' : 'not known to be synchronised'}\n`,
      );
    }
  } catch (err) {
    if (!(err instanceof BatchVerificationError)) throw err;
    if (json) printJson({ valid: false, file, reason: err.reason, detail: err.message });
    else process.stderr.write(`INVALID batch file ${file}: ${err.reason}: ${err.message}\n`);
    process.exitCode = 1;
  }
}

function verifyDataDir(dataDir: string, opts: VerifyOptions): void {
  const loaded = loadConfig(absDir(dataDir));
  const keyText = opts.receiverKey ?? loaded.config.uplink?.receiver_key;
  let receiverKey: Uint8Array | undefined;
  if (keyText) {
    try {
      receiverKey = publicKeyFromDeviceId(keyText);
    } catch (err) {
      throw new AgentError('USAGE', `receiver key: ${(err as Error).message}`);
    }
  }
  const db = openDatabase(loaded.resolvePath(loaded.config.store.path), { readonly: true });
  let report;
  try {
    report = verifyStoreChain(db, receiverKey ? { receiverKey } : {});
  } finally {
    db.close();
  }
  if (opts.json) printJson({ valid: report.problems.length === 0, ...report });
  else {
    process.stdout.write(
      `device ${report.device ?? '-'}\n${report.batches} batches, ${report.readings} readings, ${report.delivered} delivered, ` +
        `${report.receiptsVerified} receipts verified, ${report.deliveredWithoutReceipt} delivered without receipt\n`,
    );
    for (const p of report.problems) process.stdout.write(`PROBLEM ${p}\n`);
    process.stdout.write(report.problems.length === 0 ? 'chain OK\n' : `chain has ${report.problems.length} problem(s)\n`);
  }
  if (report.problems.length > 0) process.exitCode = 1;
}

export function registerVerifyCommand(program: Command): void {
  program
    .command('verify')
    .description("verify offline one batch file, a CARv1 archive of batches, a proof or a data product; or (with --data-dir) the agent store's whole chain and its receipts")
    .argument('[file]', 'a batch file (CBOR envelope, edge-agent export --seq), a .car archive (export --car), a proof or data product (JSON)')
    .option('-d, --data-dir <dir>', 'verify every batch and receipt in this agent data dir')
    .option('--receiver-key <did>', "receiver's public key to check receipts with (default: uplink.receiver_key)")
    .option('--json', 'print as JSON')
    .action((file: string | undefined, opts: VerifyOptions) => {
      if (file && opts.dataDir) throw new AgentError('USAGE', 'give either a batch FILE or --data-dir, not both');
      if (file) return verifyFile(file, opts.json ?? false);
      if (opts.dataDir) return verifyDataDir(opts.dataDir, opts);
      throw new AgentError('USAGE', 'give a batch FILE or --data-dir DIR');
    });
}

import type { Command } from 'commander';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { loadConfig } from '../config/load.js';
import { AgentError } from '../errors.js';
import { BatchVerificationError } from '../identity/batch-format.js';
import { deviceIdFromPublicKey, publicKeyFromDeviceId } from '../identity/device-id.js';
import { ProofUnavailable } from '../identity/element-proof.js';
import { readKeyFile } from '../identity/keys.js';
import { isProduct, ProductVerificationError, verifyProduct } from '../identity/product.js';
import { verifyProof, type ProofKind } from '../identity/proof.js';
import { StoreProofs } from '../store/store-proofs.js';
import { openDatabase } from '../store/database.js';
import type { LoadedConfig } from '../config/load.js';
import { absDir, dataDirOption, isoTime, printJson } from './common.js';

/** A proof file or a data product; larger files are refused before they are read. */
const MAX_PROOF_FILE_BYTES = 256 * 1024 * 1024;

const idOption = (flag: string) => (v: string) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 1) throw new AgentError('USAGE', `${flag}: expected a positive integer id, got "${v}"`);
  return n;
};

/** The device key of a data dir, read only when a sealed batch needs it. */
export function deviceKeyLoader(loaded: LoadedConfig) {
  return () => {
    const path = loaded.resolvePath(loaded.config.device.key_file);
    try {
      return readKeyFile(path);
    } catch (err) {
      throw new AgentError('KEY_INVALID', `sealed batches are proven from the device's own rows and salts, which need the device key ${path}: ${(err as Error).message}`);
    }
  };
}

/** ProofUnavailable as the operator sees it: a runtime refusal (exit 1) with what to do. */
export function asAgentError(err: unknown): unknown {
  return err instanceof ProofUnavailable ? new AgentError('BATCH_INVALID', err.message) : err;
}

interface ProofOptions {
  dataDir: string;
  reading?: number;
  verdict?: number;
  event?: number;
  out?: string;
}

function runProof(opts: ProofOptions): void {
  const wanted = (['reading', 'verdict', 'event'] as const).filter((k) => opts[k] !== undefined);
  if (wanted.length !== 1) throw new AgentError('USAGE', 'give exactly one of --reading ID, --verdict ID, --event ID');
  const kind: ProofKind = wanted[0]!;
  const id = opts[kind]!;
  const loaded = loadConfig(absDir(opts.dataDir));
  const db = openDatabase(loaded.resolvePath(loaded.config.store.path), { readonly: true });
  try {
    const { seq, proof } = new StoreProofs(db, deviceKeyLoader(loaded)).prove(kind, id);
    const text = `${JSON.stringify(proof, null, 2)}\n`;
    if (!opts.out) return void process.stdout.write(text);
    writeFileSync(opts.out, text);
    process.stdout.write(`proof of ${kind} ${id} (batch ${seq}, leaf ${proof.index} of ${proof.path.length > 0 ? `a tree with a ${proof.path.length}-step path` : 'a one-leaf tree'}, cid ${proof.cid}) written to ${opts.out}\n`);
  } catch (err) {
    throw asAgentError(err);
  } finally {
    db.close();
  }
}

/** Reads a JSON file an outside party gave us, within a size limit; usage errors for what the operator can fix. */
export function readJsonFile(file: string, what: string): { value?: unknown; error?: string } {
  if (!existsSync(file)) throw new AgentError('USAGE', `${what} file ${file} not found`);
  const size = statSync(file).size;
  if (size > MAX_PROOF_FILE_BYTES) return { error: `${file} is ${size} bytes, over the ${MAX_PROOF_FILE_BYTES} a proof or data product may have` };
  try {
    return { value: JSON.parse(readFileSync(file, 'utf8')) as unknown };
  } catch (err) {
    return { error: `${file} is not JSON: ${(err as Error).message}` };
  }
}

/** verify-proof and `verify FILE` for JSON files: a proof (§12.8) or a data product (§12.14). Sets exit code 1 when invalid. */
export function verifyProofFile(file: string, opts: { deviceKey?: string; json?: boolean }): void {
  let key: Uint8Array | undefined;
  if (opts.deviceKey) {
    try {
      key = publicKeyFromDeviceId(opts.deviceKey);
    } catch (err) {
      throw new AgentError('USAGE', `--device-key: ${(err as Error).message}`);
    }
  }
  const invalid = (reason: string, detail: string) => {
    if (opts.json) printJson({ valid: false, file, reason, detail });
    else process.stderr.write(`INVALID ${file}: ${reason}: ${detail}\n`);
    process.exitCode = 1;
  };
  const read = readJsonFile(file, 'proof');
  if (read.error !== undefined) return invalid('malformed', read.error);
  try {
    if (isProduct(read.value)) {
      const c = verifyProduct(read.value, key);
      if (opts.json) return printJson({ valid: true, file, kind: 'product', ...c });
      return void process.stdout.write(
        `valid data product: ${c.readings} readings of sensor ${c.sensor} from ${isoTime(c.from)} to ${isoTime(c.to)}, ` +
          `in ${c.batches} batches of ${c.device}, complete as the device's signed manifest lists them\n` +
          (c.sensorSeqGaps === null
            ? ''
            : c.sensorSeqGaps === 0
              ? "  the sensor's own sequence numbers are continuous\n"
              : `  NOTE ${c.sensorSeqGaps} of the sensor's own sequence numbers are missing in the range (readings it numbered that never reached a batch)\n`),
      );
    }
    const { header, element } = verifyProof(read.value, key);
    const p = read.value as { kind: ProofKind; index: number; cid?: string };
    const e = element as Record<string, unknown>;
    const device = deviceIdFromPublicKey(header.dev);
    if (opts.json) return printJson({ valid: true, file, kind: p.kind, device, seq: header.seq, index: p.index, cid: p.cid ?? null, element: e });
    const what = p.kind === 'reading' ? `reading ${e.i}: sensor ${e.s} = ${e.v}${e.u ? ` ${e.u}` : ''} at ${isoTime(e.t as number)}` : p.kind === 'verdict' ? `verdict ${e.i} on ${e.k}: alert ${e.a ? 'on' : 'off'}, value ${e.v} (threshold ${e.th})` : `event ${e.i}: ${e.k}${e.s ? ` (${e.s})` : ''} at ${isoTime(e.t as number)}`;
    process.stdout.write(`valid proof of ${what}\n  in batch ${header.seq} (leaf ${p.index} of ${p.kind === 'reading' ? header.n : p.kind === 'verdict' ? header.nv : header.ne}) signed by ${device}${p.cid ? `\n  cid ${p.cid}` : ''}\n`);
  } catch (err) {
    if (err instanceof BatchVerificationError || err instanceof ProductVerificationError) return invalid(err.reason, err.message);
    throw err;
  }
}

export function registerProofCommands(program: Command): void {
  program
    .command('proof')
    .description('prove one reading, verdict or event to a third party: its signed batch header, leaf and RFC 6962 audit path, nothing else of the batch (needs version-3 batches, batch.format: 3)')
    .addOption(dataDirOption())
    .option('--reading <id>', 'reading id (as in the batch: field i)', idOption('--reading'))
    .option('--verdict <id>', 'verdict id', idOption('--verdict'))
    .option('--event <id>', 'event id', idOption('--event'))
    .option('-o, --out <file>', 'write the proof (JSON) here instead of stdout')
    .action((opts: ProofOptions) => runProof(opts));

  program
    .command('verify-proof')
    .description('check a proof (edge-agent proof) or a data product (edge-agent export --sensor --proofs) offline; exit 0 valid, 1 invalid with the reason')
    .argument('<file>', 'proof or data product (JSON)')
    .option('--device-key <did>', 'the device key it must be signed with (did:key); default: the key it names')
    .option('--json', 'print as JSON')
    .action((file: string, opts: { deviceKey?: string; json?: boolean }) => verifyProofFile(file, opts));
}

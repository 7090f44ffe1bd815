import { closeSync, createReadStream, createWriteStream, openSync, readSync, renameSync, rmSync, statSync, type Stats } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { once } from 'node:events';
import { parse } from 'csv-parse';
import { stringify } from 'csv-stringify';
import { AgentError } from '../errors.js';
import type { Progress } from '../progress/progress.js';
import { findModel, loadManifest } from './manifest.js';
import type { Row, Verdict } from './model-runner.js';
import { openModel } from './index.js';

/** The streaming single-channel detector replay uses when no model is named. */
export const DEFAULT_REPLAY_MODEL = 'stream-ad';
const CHUNK_ROWS = 4096;
const DELIMITERS = [',', ';', '\t'] as const;

export interface ReplayOptions {
  input: string;
  output: string;
  modelsDir: string;
  /** Default: the streaming detector on columns `timestamp` and `value`. */
  modelId?: string;
  /** Rows are grouped per value of this column; windows never cross groups. */
  assetColumn?: string;
  warmup?: number;
  progress?: (totalBytes: number) => Progress;
}

export interface ReplaySummary {
  model: string;
  modelSha256: string;
  rows: number;
  keys: number;
  verdicts: number;
  alertsRaised: number;
  seconds: number;
  /** Rows a series needs before its first verdict. */
  warmupRows: number;
  /** Series (keys) that ended before their warm-up was over: they got no verdict at all. */
  shorterThanWarmup: string[];
  /** What the operator should know about this run (e.g. a file shorter than the warm-up). */
  warnings: string[];
}

/** The header's delimiter: whichever of , ; TAB splits it into the most columns. */
function sniffDelimiter(path: string): string {
  const fd = openSync(path, 'r');
  try {
    const buf = Buffer.alloc(64 * 1024);
    const n = readSync(fd, buf, 0, buf.length, 0);
    const line = buf.subarray(0, n).toString('utf8').split(/\r?\n/, 1)[0] ?? '';
    let best: string = ',';
    for (const d of DELIMITERS) if (line.split(d).length > line.split(best).length) best = d;
    return best;
  } finally {
    closeSync(fd);
  }
}

function parseTimestamp(text: string, line: number, column: string): number {
  const t = text.trim();
  if (/^-?\d+(\.\d+)?$/.test(t)) {
    const n = Number(t);
    return Math.round(Math.abs(n) < 1e11 ? n * 1000 : n); // seconds unless it is already ms
  }
  const ms = Date.parse(t);
  if (Number.isNaN(ms)) throw new AgentError('REPLAY_INPUT', `line ${line}: column ${column}: "${text}" is neither a number nor a date`);
  return ms;
}

/**
 * Runs the same model code path as the live agent over a CSV file: rows go in file order,
 * each row's outputs depend only on it and earlier rows of its asset (strictly causal), and
 * the output repeats every input column and adds the model's outputs.
 */
export async function replayCsv(opts: ReplayOptions): Promise<ReplaySummary> {
  const started = performance.now();
  const modelId = opts.modelId ?? DEFAULT_REPLAY_MODEL;
  const entry = findModel(loadManifest(opts.modelsDir), modelId);
  const features = opts.modelId === undefined ? ['value'] : entry.input.features;
  if (opts.modelId === undefined && entry.input.features.length !== 1) {
    throw new AgentError('MODEL_INVALID', `model ${modelId} takes ${entry.input.features.length} features; the default replay needs a single-channel model`);
  }
  let totalBytes: number;
  let inputStat: Stats;
  try {
    inputStat = statSync(opts.input);
    totalBytes = inputStat.size;
  } catch (err) {
    throw new AgentError('REPLAY_INPUT', `--input ${opts.input}: ${(err as Error).message}`, { exitCode: 2 });
  }
  refuseSameFile(opts.input, opts.output, inputStat);
  const delimiter = sniffDelimiter(opts.input);
  const runner = await openModel(opts.modelsDir, modelId, opts.warmup === undefined ? {} : { warmup: opts.warmup });
  const progress = opts.progress?.(totalBytes);

  const input = createReadStream(opts.input);
  // The line of each record rides on the record itself: csv-parse's `info` objects cost ~10% of a replay.
  const parser = input.pipe(
    parse({
      delimiter,
      bom: true,
      skip_empty_lines: true,
      relax_column_count: false,
      trim: false,
      on_record: (record: string[], context: { lines: number }) => Object.assign(record, { line: context.lines }),
    }),
  );
  const out = stringify({ delimiter });
  // Written beside the output and renamed at the end: a failed run never leaves a truncated or
  // empty file under the output's name (rename within one directory is atomic on POSIX).
  const temp = join(dirname(resolve(opts.output)), `.${basename(opts.output)}.${process.pid}.partial`);
  const sink = createWriteStream(temp, { flags: 'wx' });
  out.pipe(sink);

  const anomaly = entry.task === 'anomaly';
  const outColumns = [...entry.outputs.map((o) => o.name), ...(anomaly ? ['anomaly_score'] : []), 'alert'];
  let header: string[] | undefined;
  let featureIdx: number[] = [];
  let tsIdx = -1;
  let assetIdx = -1;
  let rows = 0;
  let verdicts = 0;
  let alertsRaised = 0;
  let chunk: { cells: string[]; row: Row }[] = [];
  const rowsPerKey = new Map<string, number>();

  const flush = async () => {
    if (chunk.length === 0) return;
    const results = await runner.push(chunk.map((c) => c.row));
    for (let i = 0; i < chunk.length; i++) {
      const v = results[i] ?? null;
      if (v) {
        verdicts++;
        if (v.changed && v.alert) alertsRaised++;
      }
      if (!out.write([...chunk[i]!.cells, ...outputCells(v, entry.outputs.map((o) => o.name), anomaly)])) await once(out, 'drain');
    }
    chunk = [];
    progress?.update(input.bytesRead, `${alertsRaised} alerts`);
  };

  try {
    for await (const cells of parser as AsyncIterable<string[] & { line: number }>) {
      const line = cells.line;
      if (!header) {
        header = cells.map((c) => c.trim());
        const col = (name: string, what: string) => {
          const i = header!.indexOf(name);
          if (i < 0) throw new AgentError('REPLAY_INPUT', `${opts.input}: the header has no column "${name}" (${what}); it has: ${header!.join(', ')}`, { exitCode: 2 });
          return i;
        };
        featureIdx = features.map((f) => col(f, `input of model ${modelId}`));
        if (opts.modelId === undefined) tsIdx = col('timestamp', 'row time');
        else tsIdx = header.indexOf('timestamp');
        if (opts.assetColumn !== undefined) assetIdx = col(opts.assetColumn, '--asset-column');
        const clash = outColumns.find((c) => header!.includes(c));
        if (clash) throw new AgentError('REPLAY_INPUT', `${opts.input}: the input already has a column "${clash}", which the output adds`, { exitCode: 2 });
        out.write([...cells, ...outColumns]);
        continue;
      }
      const values = featureIdx.map((i, k) => {
        const text = cells[i]!.trim();
        const n = text === '' ? NaN : Number(text);
        if (!Number.isFinite(n)) throw new AgentError('REPLAY_INPUT', `${opts.input}: line ${line}: column ${features[k]}: "${cells[i]}" is not a finite number`);
        return n;
      });
      const ts = tsIdx >= 0 ? parseTimestamp(cells[tsIdx]!, line, 'timestamp') : rows;
      const key = assetIdx >= 0 ? cells[assetIdx]! : '';
      rowsPerKey.set(key, (rowsPerKey.get(key) ?? 0) + 1);
      chunk.push({ cells, row: { key, ts, values } });
      rows++;
      if (chunk.length >= CHUNK_ROWS) await flush();
    }
    if (!header) throw new AgentError('REPLAY_INPUT', `${opts.input}: empty file (a header line is needed)`, { exitCode: 2 });
    await flush();
  } catch (err) {
    input.destroy();
    out.end();
    await once(sink, 'close').catch(() => undefined);
    rmSync(temp, { force: true });
    await runner.close();
    if (err instanceof AgentError) throw err;
    // csv-parse errors name the line already (e.g. a row with the wrong number of columns).
    throw new AgentError('REPLAY_INPUT', `${opts.input}: ${(err as Error).message}`);
  }
  out.end();
  await once(sink, 'close');
  renameSync(temp, opts.output);
  progress?.finish(`${rows} rows, ${alertsRaised} alerts`);
  const shorterThanWarmup = [...rowsPerKey].filter(([, n]) => n < runner.warmupRows).map(([k]) => k);
  const warnings: string[] = [];
  if (shorterThanWarmup.length > 0) {
    const what = assetIdx >= 0 ? `${shorterThanWarmup.length} of ${rowsPerKey.size} assets (${shorterThanWarmup.slice(0, 5).join(', ')}${shorterThanWarmup.length > 5 ? ', ...' : ''}) have` : `the file has only ${rows} rows,`;
    warnings.push(`${opts.input}: ${what} fewer than the ${runner.warmupRows}-row warm-up of model ${modelId}: no verdicts for them (score 0, alert 0); give it a longer file or --warmup`);
  }
  const summary: ReplaySummary = {
    model: modelId,
    modelSha256: entry.sha256,
    rows,
    keys: runner.keyCount,
    verdicts,
    alertsRaised,
    seconds: (performance.now() - started) / 1000,
    warmupRows: runner.warmupRows,
    shorterThanWarmup,
    warnings,
  };
  await runner.close();
  return summary;
}

/** Refuses an output that is the input itself (same path, or another name of the same file). */
function refuseSameFile(input: string, output: string, inputStat: Stats): void {
  let same = resolve(input) === resolve(output);
  if (!same) {
    try {
      const o = statSync(output);
      same = o.ino === inputStat.ino && o.dev === inputStat.dev;
    } catch {
      // No output file yet: it cannot be the input.
    }
  }
  if (same) throw new AgentError('USAGE', `--output ${output} is the input file: replay would overwrite what it reads; choose another output path`, { exitCode: 2 });
}

/** Cells added to a row: the outputs, the calibrated score (0 while warming up), the alert (1 while raised, else 0). */
function outputCells(v: Verdict | null, outputs: string[], anomaly: boolean): string[] {
  if (!v) return [...outputs.map(() => ''), ...(anomaly ? ['0'] : []), '0'];
  return [...outputs.map((o) => fmt(v.outputs[o]!)), ...(anomaly ? [fmt(v.score!)] : []), v.alert ? '1' : '0'];
}

function fmt(n: number): string {
  return Number(n.toPrecision(6)).toString();
}


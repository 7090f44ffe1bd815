/**
 * Loaders for the training data sets in ../shared/datasets (SKAB v0.9, C-MAPSS FD001), validated
 * line by line: a malformed file stops training with the file and line at fault.
 */
import { readFileSync, readdirSync, existsSync } from 'node:fs';
import path from 'node:path';

export const SKAB_CHANNELS = [
  'Accelerometer1RMS',
  'Accelerometer2RMS',
  'Current',
  'Pressure',
  'Temperature',
  'Thermocouple',
  'Voltage',
  'Volume Flow RateRMS',
] as const;

export interface SkabFile {
  /** Relative to the data directory, e.g. "skab/data/valve1/0.csv". */
  name: string;
  group: string;
  /** rows[t][c], raw values in SKAB_CHANNELS order. */
  rows: Float64Array[];
  anomaly: Uint8Array;
}

export class DatasetError extends Error {
  constructor(file: string, line: number | null, msg: string) {
    super(`${file}${line === null ? '' : `:${line}`}: ${msg}`);
    this.name = 'DatasetError';
  }
}

function readText(file: string): string {
  if (!existsSync(file)) throw new DatasetError(file, null, 'missing (pass --data DIR pointing at the shared datasets folder)');
  return readFileSync(file, 'utf8');
}

function parseNumber(cell: string | undefined, file: string, line: number, col: string): number {
  const v = cell === undefined || cell.trim() === '' ? NaN : Number(cell);
  if (!Number.isFinite(v)) throw new DatasetError(file, line, `column ${col}: not a finite number: ${JSON.stringify(cell)}`);
  return v;
}

export function loadSkabFile(dataDir: string, name: string): SkabFile {
  const file = path.join(dataDir, name);
  const lines = readText(file).split(/\r?\n/);
  const header = lines[0]?.split(';') ?? [];
  // anomaly-free.csv has no label columns: every row is normal.
  const labelled = header.length > SKAB_CHANNELS.length + 1;
  const expected = ['datetime', ...SKAB_CHANNELS, ...(labelled ? ['anomaly', 'changepoint'] : [])];
  if (header.join(';') !== expected.join(';')) {
    throw new DatasetError(file, 1, `unexpected header ${JSON.stringify(lines[0])}; expected ${expected.join(';')}`);
  }
  const rows: Float64Array[] = [];
  const anomaly: number[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i]!;
    if (line.trim() === '') continue;
    const cells = line.split(';');
    if (cells.length !== expected.length) throw new DatasetError(file, i + 1, `${cells.length} fields, expected ${expected.length}`);
    const row = new Float64Array(SKAB_CHANNELS.length);
    for (let c = 0; c < SKAB_CHANNELS.length; c++) row[c] = parseNumber(cells[c + 1], file, i + 1, SKAB_CHANNELS[c]!);
    const a = labelled ? parseNumber(cells[9], file, i + 1, 'anomaly') : 0;
    if (a !== 0 && a !== 1) throw new DatasetError(file, i + 1, `anomaly must be 0 or 1, got ${a}`);
    rows.push(row);
    anomaly.push(a);
  }
  if (rows.length === 0) throw new DatasetError(file, null, 'no data rows');
  return { name, group: path.basename(path.dirname(file)), rows, anomaly: Uint8Array.from(anomaly) };
}

/** Every SKAB file in a fixed order: anomaly-free first, then valve1, valve2, other by number. */
export function loadSkab(dataDir: string): { free: SkabFile; faults: SkabFile[] } {
  const base = path.join(dataDir, 'skab', 'data');
  const free = loadSkabFile(dataDir, 'skab/data/anomaly-free/anomaly-free.csv');
  const faults: SkabFile[] = [];
  for (const group of ['valve1', 'valve2', 'other']) {
    const dir = path.join(base, group);
    if (!existsSync(dir)) throw new DatasetError(dir, null, 'missing SKAB folder');
    const names = readdirSync(dir)
      .filter((n) => n.endsWith('.csv'))
      .sort((a, b) => Number.parseInt(a, 10) - Number.parseInt(b, 10));
    for (const n of names) faults.push(loadSkabFile(dataDir, `skab/data/${group}/${n}`));
  }
  return { free, faults };
}

export const CMAPSS_COLUMNS = ['unit', 'cycle', 'setting1', 'setting2', 'setting3', ...Array.from({ length: 21 }, (_, i) => `s${i + 1}`)];

export interface Engine {
  unit: number;
  /** rows[t][c] in CMAPSS_COLUMNS order minus unit and cycle (setting1..3, s1..s21). */
  rows: Float64Array[];
}

export function loadCmapss(dataDir: string): Engine[] {
  const file = path.join(dataDir, 'cmapss', 'train_FD001.txt');
  const lines = readText(file).split(/\r?\n/);
  const engines = new Map<number, Engine>();
  let lastUnit = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    const cells = line.split(/\s+/);
    if (cells.length !== CMAPSS_COLUMNS.length) throw new DatasetError(file, i + 1, `${cells.length} fields, expected ${CMAPSS_COLUMNS.length}`);
    const v = cells.map((c, k) => parseNumber(c, file, i + 1, CMAPSS_COLUMNS[k]!));
    const unit = v[0]!;
    const cycle = v[1]!;
    if (!Number.isInteger(unit) || unit < lastUnit) throw new DatasetError(file, i + 1, `unit ${unit} out of order`);
    lastUnit = unit;
    let e = engines.get(unit);
    if (!e) engines.set(unit, (e = { unit, rows: [] }));
    if (cycle !== e.rows.length + 1) throw new DatasetError(file, i + 1, `unit ${unit}: cycle ${cycle}, expected ${e.rows.length + 1}`);
    e.rows.push(Float64Array.from(v.slice(2)));
  }
  if (engines.size === 0) throw new DatasetError(file, null, 'no engines');
  return [...engines.values()];
}

/** `--data DIR` from argv, else ../shared/datasets relative to the project root (cwd). */
export function dataDirFromArgs(argv: string[]): string {
  const i = argv.indexOf('--data');
  if (i !== -1) {
    const v = argv[i + 1];
    if (!v) throw new Error('--data needs a directory');
    return path.resolve(v);
  }
  return path.resolve('../shared/datasets');
}

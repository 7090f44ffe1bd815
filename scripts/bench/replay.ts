/**
 * Replay throughput: `edge-agent replay`'s code path (CSV in, the model over every row, CSV out)
 * on generated files, rows per second min/median/max over runs. Part of `npm run bench`;
 * alone: node dist/scripts/bench/replay.js [--quick]
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { findModel, loadManifest, SHIPPED_MODELS_DIR } from '../../agent/inference/index.js';
import { replayCsv } from '../../agent/inference/replay.js';
import { fmt, spread, type Spread } from './lib/stats.js';

export interface ReplayBench {
  /** The streaming detector over one long series (timestamp,value). */
  stream_ad_rows_per_s: Spread;
  /** The RUL model over many assets (--asset-column unit), every feature column present. */
  cmapss_rul_rows_per_s: Spread;
  rows: number;
  runs: number;
}

function streamCsv(path: string, rows: number): void {
  const lines = ['timestamp,value'];
  for (let i = 0; i < rows; i++) lines.push(`${1763000000 + i},${(20 + Math.sin(i / 50) + 0.1 * Math.sin(i * 12.9898)).toFixed(4)}`);
  writeFileSync(path, `${lines.join('\n')}\n`);
}

function assetCsv(path: string, rows: number, features: readonly string[]): void {
  const assets = 100;
  const lines = [['unit', 'cycle', ...features].join(',')];
  for (let i = 0; i < rows; i++) {
    const cycle = Math.floor(i / assets) + 1;
    lines.push([String((i % assets) + 1), String(cycle), ...features.map((_, f) => (100 + f + 0.01 * cycle + 0.1 * Math.sin(i + f)).toFixed(3))].join(','));
  }
  writeFileSync(path, `${lines.join('\n')}\n`);
}

export async function replayBench(opts: { rows: number; runs: number; log: (s: string) => void }): Promise<ReplayBench> {
  const dir = mkdtempSync(join(tmpdir(), 'bench-replay-'));
  try {
    const stream = join(dir, 'stream.csv');
    const assets = join(dir, 'assets.csv');
    streamCsv(stream, opts.rows);
    assetCsv(assets, opts.rows, findModel(loadManifest(SHIPPED_MODELS_DIR), 'cmapss-rul').input.features);
    const rates = { stream: [] as number[], rul: [] as number[] };
    for (let i = 0; i < opts.runs; i++) {
      const s = await replayCsv({ input: stream, output: join(dir, 'stream.out.csv'), modelsDir: SHIPPED_MODELS_DIR });
      const r = await replayCsv({ input: assets, output: join(dir, 'assets.out.csv'), modelsDir: SHIPPED_MODELS_DIR, modelId: 'cmapss-rul', assetColumn: 'unit' });
      rates.stream.push(s.rows / s.seconds);
      rates.rul.push(r.rows / r.seconds);
      opts.log(`replay run ${i + 1}: stream-ad ${Math.round(s.rows / s.seconds)} rows/s, cmapss-rul ${Math.round(r.rows / r.seconds)} rows/s (${opts.rows} rows)`);
    }
    return { stream_ad_rows_per_s: spread(rates.stream), cmapss_rul_rows_per_s: spread(rates.rul), rows: opts.rows, runs: opts.runs };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const quick = process.argv.includes('--quick');
  const r = await replayBench({ rows: quick ? 50_000 : 300_000, runs: quick ? 2 : 3, log: (s) => process.stdout.write(`${s}\n`) });
  process.stdout.write(`replay: stream-ad ${fmt(r.stream_ad_rows_per_s, ' rows/s')}, cmapss-rul ${fmt(r.cmapss_rul_rows_per_s, ' rows/s')} (min/median/max)\n`);
  console.log(JSON.stringify(r));
}

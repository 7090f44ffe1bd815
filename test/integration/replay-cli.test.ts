import { existsSync, mkdtempSync, readdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../helpers/cli.js';
import { writeFixtureModels } from '../helpers/onnx-fixtures.js';

const dir = mkdtempSync(join(tmpdir(), 'replay-'));
const models = join(dir, 'models');
beforeAll(() => writeFixtureModels(models));

function csv(name: string, header: string, rows: string[]): string {
  const path = join(dir, name);
  writeFileSync(path, `${[header, ...rows].join('\n')}\n`);
  return path;
}

const lines = (path: string) => readFileSync(path, 'utf8').trim().split('\n');

describe('edge-agent replay', () => {
  const values = Array.from({ length: 400 }, (_, i) => (Math.sin(i / 5) + (i >= 300 && i < 320 ? 8 : 0)).toFixed(4));
  const rows = values.map((v, i) => `${1763000000 + i},${v}`);

  it('is strictly causal: the scores of a prefix do not change when later rows are cut off', () => {
    const full = csv('full.csv', 'timestamp,value', rows);
    const prefix = csv('prefix.csv', 'timestamp,value', rows.slice(0, 310));
    const r1 = cli(['replay', '--models-dir', models, '--model', 'mean-square', '--input', full, '--output', join(dir, 'full.out.csv'), '--json']);
    const r2 = cli(['replay', '--models-dir', models, '--model', 'mean-square', '--input', prefix, '--output', join(dir, 'prefix.out.csv')]);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    const out = lines(join(dir, 'full.out.csv'));
    expect(out[0]).toBe('timestamp,value,error,anomaly_score,alert');
    expect(out).toHaveLength(401);
    expect(lines(join(dir, 'prefix.out.csv'))).toEqual(out.slice(0, 311));
    const scores = out.slice(1).map((l) => Number(l.split(',')[3]));
    expect(scores.every((s) => s >= 0 && s <= 1)).toBe(true);
    expect(scores.slice(0, 8)).toEqual(new Array(8).fill(0)); // warm-up
    expect(Math.max(...scores.slice(300, 320))).toBeGreaterThan(0.9);
    expect(JSON.parse(r1.stdout)).toMatchObject({ model: 'mean-square', rows: 400, keys: 1, alertsRaised: expect.any(Number) });
    expect(JSON.parse(r1.stdout).alertsRaised).toBeGreaterThan(0);
    expect(r1.stderr).toMatch(/replay .*full\.csv: done, \d+\/\d+ bytes/); // plain progress lines when stderr is not a terminal
  });

  it('with the shipped streaming detector (the default model), a prefix scores the same as the whole file', () => {
    const long = Array.from({ length: 900 }, (_, i) => `${1763000000 + i},${(20 + Math.sin(i / 7) + 0.3 * Math.sin(i * 12.9898) + (i >= 700 && i < 760 ? 6 : 0)).toFixed(4)}`);
    const full = csv('shipped-full.csv', 'timestamp,value', long);
    const prefix = csv('shipped-prefix.csv', 'timestamp,value', long.slice(0, 720));
    const r1 = cli(['replay', '--input', full, '--output', join(dir, 'shipped-full.out.csv'), '--no-progress']);
    const r2 = cli(['replay', '--input', prefix, '--output', join(dir, 'shipped-prefix.out.csv'), '--no-progress']);
    expect(r1.code, r1.stderr).toBe(0);
    expect(r2.code, r2.stderr).toBe(0);
    expect(r1.stdout).toMatch(/900 rows \(1 series\) scored by stream-ad/);
    const out = lines(join(dir, 'shipped-full.out.csv'));
    expect(out[0]).toBe('timestamp,value,error,anomaly_score,alert');
    expect(lines(join(dir, 'shipped-prefix.out.csv'))).toEqual(out.slice(0, 721));
    const scores = out.slice(1).map((l) => Number(l.split(',')[3]));
    expect(scores.slice(0, 150).every((x) => x === 0)).toBe(true); // the shipped model's 150-row warm-up
    expect(Math.max(...scores.slice(700, 760))).toBeGreaterThanOrEqual(0.9); // the level shift
  });

  it('refuses an output that is the input, never leaves a partial output, and says when a file is shorter than the warm-up', () => {
    const rows = Array.from({ length: 60 }, (_, i) => `${1763000000 + i},${(20 + 0.1 * Math.sin(i)).toFixed(3)}`);
    const input = csv('short.csv', 'timestamp,value', rows);
    const same = cli(['replay', '--input', input, '--output', input, '--no-progress']);
    expect(same.code).toBe(2);
    expect(same.stderr).toMatch(/--output .*short\.csv is the input file/);
    symlinkSync(input, join(dir, 'alias.csv'));
    const alias = cli(['replay', '--input', input, '--output', join(dir, 'alias.csv'), '--no-progress']);
    expect(alias.code).toBe(2);
    expect(readFileSync(input, 'utf8').trim().split('\n')).toHaveLength(61); // untouched

    // Shorter than the shipped model's warm-up: scored 0 / alert 0 throughout, and a warning says why.
    const r = cli(['replay', '--input', input, '--output', join(dir, 'short.out.csv'), '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: .*short\.csv: the file has only 60 rows, fewer than the 150-row warm-up of model stream-ad/);
    expect(lines(join(dir, 'short.out.csv')).slice(1).every((l) => l.endsWith(',0,0'))).toBe(true);

    // A run that fails half-way (a bad value on the last line) leaves no output file, not a truncated one.
    const bad = csv('late-bad.csv', 'timestamp,value', [...Array.from({ length: 5000 }, (_, i) => `${1763000000 + i},20`), '1763009999,oops']);
    const failed = cli(['replay', '--input', bad, '--output', join(dir, 'late-bad.out.csv'), '--no-progress']);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toMatch(/line 5002: column value: "oops" is not a finite number/);
    expect(existsSync(join(dir, 'late-bad.out.csv'))).toBe(false);
    expect(readdirSync(dir).filter((f) => f.includes('.partial'))).toEqual([]);
  });

  it('groups rows per asset so windows never cross assets, and keeps the input columns and delimiter', () => {
    const a = ['1;1;1;10', '1;2;2;12', '2;1;-1;10', '1;3;3;14', '2;2;0;8'];
    const input = csv('assets.csv', 'unit;cycle;a;b', a);
    const r = cli(['replay', '--models-dir', models, '--model', 'window-mean', '--asset-column', 'unit', '--input', input, '--output', join(dir, 'assets.out.csv'), '--no-progress']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const out = lines(join(dir, 'assets.out.csv'));
    expect(out[0]).toBe('unit;cycle;a;b;rul;alert');
    // unit 2's first row is padded with itself only, not with unit 1's rows: z = [-1, 0] -> mean -0.5
    expect(out[3]).toBe('2;1;-1;10;-0.5;1');
    expect(out[4]).toBe(`1;3;3;14;${Number(((1 + 1 + 2 + 1 + 3 + 2) / 8).toPrecision(6))};0`);
  });

  it('names the line and column of a bad value, and the missing column', () => {
    const bad = csv('bad.csv', 'timestamp,value', ['1763000000,1', '1763000001,abc']);
    const r = cli(['replay', '--models-dir', models, '--model', 'mean-square', '--input', bad, '--output', join(dir, 'bad.out.csv'), '--no-progress']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/bad\.csv: line 3: column value: "abc" is not a finite number/);
    const nocol = csv('nocol.csv', 'time,v', ['1,2']);
    const r2 = cli(['replay', '--models-dir', models, '--model', 'mean-square', '--input', nocol, '--output', join(dir, 'x.csv')]);
    expect(r2.code).toBe(2);
    expect(r2.stderr).toMatch(/the header has no column "value" \(input of model mean-square\); it has: time, v/);
    const r3 = cli(['replay', '--models-dir', models, '--model', 'nope', '--input', nocol, '--output', join(dir, 'x.csv')]);
    expect(r3.stderr).toMatch(/no model "nope"/);
  });
});

describe('edge-agent models', () => {
  it('lists the manifest and verifies every file, failing on a tampered one', () => {
    const d = join(dir, 'm2');
    writeFixtureModels(d);
    const list = cli(['models', 'list', '--models-dir', d]);
    expect(list.code).toBe(0);
    expect(list.stdout).toMatch(/mean-square 1\.0\.0 \(anomaly\)/);
    expect(list.stdout).toMatch(/alert when rul <= 0 \(clears at rul > 1 for 1 rows\)/);
    expect(cli(['models', 'verify', '--models-dir', d]).code).toBe(0);
    writeFileSync(join(d, 'window-mean.onnx'), Buffer.concat([readFileSync(join(d, 'window-mean.onnx')), Buffer.from([0])]));
    const v = cli(['models', 'verify', '--models-dir', d]);
    expect(v.code).toBe(1);
    expect(v.stdout).toMatch(/ok {6}mean-square/);
    expect(v.stdout).toMatch(/FAILED {2}window-mean {2}model window-mean: .* has sha256 .* but the manifest says/);
  });
});

import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openModel, verifyModels, type Row, type Verdict } from '../../agent/inference/index.js';
import { FIXTURE_WINDOW, writeFixtureModels } from '../helpers/onnx-fixtures.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'models-'));
  writeFixtureModels(dir);
});

const series = (values: number[], key = 's1'): Row[] => values.map((v, i) => ({ key, ts: 1000 * (i + 1), values: [v] }));

describe('model runner (anomaly, warm-up calibration)', () => {
  it('follows the contract: no verdict in warm-up, frozen z-scores, quantile calibration, score 1-2^(-e/q), hysteresis', async () => {
    const runner = await openModel(dir, 'mean-square');
    const warm = [1, 3, 1, 3, 1, 3, 1, 3]; // mean 2, population std 1: z = -1, +1, ...
    const out = await runner.push(series([...warm, 2, 2, 2, 2, 12, 12, 2, 2, 2, 2, 2]));
    expect(out.slice(0, 8)).toEqual(new Array(8).fill(null));
    // Every warm-up window has error 1 (mean of four 1s); median 1, factor 2: q = 2.
    const errorAt = (i: number) => out[i]!.outputs.error!;
    expect(errorAt(8)).toBeCloseTo(0.75, 6); // z = [1,-1,1,0]
    expect(out[8]!.score).toBeCloseTo(1 - 2 ** (-0.75 / 2), 6);
    expect(errorAt(12)).toBeCloseTo(25, 5); // z = [0,0,0,10]
    expect(out[12]!.score).toBeCloseTo(1 - 2 ** (-25 / 2), 6);
    const alerts = out.slice(8).map((v) => [v!.alert, v!.changed]);
    // Raised by the second window holding the spike (on_count 2); the spike stays in the window
    // for W rows, then two clean windows clear it (off_count 2).
    expect(alerts).toEqual([
      [false, false], [false, false], [false, false], [false, false],
      [false, false], [true, true], [true, false], [true, false],
      [true, false], [true, false], [false, true],
    ]);
    expect(out[13]!).toMatchObject({ key: 's1', ts: 14_000, windowStart: 11_000, modelId: 'mean-square', threshold: 0.5 });
  });

  it('is causal and independent of how rows are batched: one by one, all at once, or cut short', async () => {
    const values = Array.from({ length: 60 }, (_, i) => Math.sin(i / 3) + (i > 40 ? 5 : 0));
    const interleaved = (vs: number[]): Row[] => vs.flatMap((v, i) => [{ key: 'a', ts: i, values: [v] }, { key: 'b', ts: i, values: [-v] }]);
    const all = await (await openModel(dir, 'mean-square')).push(interleaved(values));
    const oneByOne: (Verdict | null)[] = [];
    const r2 = await openModel(dir, 'mean-square');
    for (const row of interleaved(values)) oneByOne.push(...(await r2.push([row])));
    const prefix = await (await openModel(dir, 'mean-square')).push(interleaved(values.slice(0, 45)));
    const strip = (vs: (Verdict | null)[]) => vs.map((v) => (v ? { ...v, modelSha256: undefined } : null));
    expect(strip(oneByOne)).toEqual(strip(all));
    expect(strip(prefix)).toEqual(strip(all.slice(0, 90)));
    expect(all.filter((v) => v?.changed).length).toBeGreaterThan(0);
  });

  it('continues exactly where it stopped after its state is saved and restored (agent restart)', async () => {
    const values = Array.from({ length: 40 }, (_, i) => Math.cos(i / 2) + (i > 30 ? 6 : 0));
    const strip = (vs: (Verdict | null)[]) => vs.map((v) => (v ? { ...v, modelSha256: undefined } : null));
    const straight = await (await openModel(dir, 'mean-square')).push(series(values));
    for (const cut of [5, 20]) {
      const before = await openModel(dir, 'mean-square');
      const first = await before.push(series(values).slice(0, cut));
      const saved = JSON.parse(JSON.stringify(Object.fromEntries(before.exportState())));
      const after = await openModel(dir, 'mean-square');
      after.importState('s1', saved.s1);
      const rest = await after.push(series(values).slice(cut));
      expect(strip([...first, ...rest])).toEqual(strip(straight));
    }
    const single = await openModel(dir, 'mean-square');
    await single.push(series(values).slice(0, 10));
    const other = await openModel(dir, 'window-mean');
    expect(() => other.importState('s1', single.exportState().get('s1')!)).toThrow(/does not fit model window-mean \(window 4, 2 features\)/);
  });

  it('takes a warm-up override per binding, but never shorter than the window', async () => {
    const r = await openModel(dir, 'mean-square', { warmup: 5 });
    const out = await r.push(series([1, 2, 3, 4, 5, 6]));
    expect(out.findIndex((v) => v !== null)).toBe(5);
    await expect(openModel(dir, 'mean-square', { warmup: FIXTURE_WINDOW - 1 })).rejects.toThrow(/shorter than the window/);
  });
});

describe('model runner (fixed normalisation, edge padding)', () => {
  it('gives every row a verdict, padding a short history with its first row', async () => {
    const r = await openModel(dir, 'window-mean');
    // z = (a - 0) / 1 + (b - 10) / 2
    const out = await r.push([
      { key: 'e1', ts: 1, values: [1, 10] },
      { key: 'e1', ts: 2, values: [2, 12] },
      { key: 'e2', ts: 1, values: [-1, 10] },
    ]);
    expect(out[0]!.outputs.rul).toBeCloseTo(4 / 8, 6); // [1,0] four times
    expect(out[1]!.outputs.rul).toBeCloseTo((3 * 1 + 3) / 8, 6); // three padded [1,0] + [2,1]
    expect(out[1]!.windowStart).toBe(1);
    expect(out[2]!).toMatchObject({ key: 'e2', alert: true, changed: true, value: -0.5, threshold: 0 });
  });
});

describe('model verification', () => {
  it('refuses a model whose bytes do not match the manifest sha256, naming the file', async () => {
    const d = mkdtempSync(join(tmpdir(), 'models-'));
    writeFixtureModels(d);
    const bytes = readFileSync(join(d, 'window-mean.onnx'));
    bytes[bytes.length - 1] ^= 1;
    writeFileSync(join(d, 'window-mean.onnx'), bytes);
    await expect(openModel(d, 'window-mean')).rejects.toThrow(/model window-mean: .*window-mean\.onnx has sha256 [0-9a-f]{64}, but the manifest says/);
    expect(verifyModels(d).map((c) => [c.id, c.ok])).toEqual([['mean-square', true], ['window-mean', false]]);
  });

  it('refuses a file onnxruntime cannot parse even when its hash was updated', async () => {
    const d = mkdtempSync(join(tmpdir(), 'models-'));
    writeFixtureModels(d);
    writeFileSync(join(d, 'mean-square.onnx'), 'not a model');
    const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
    m.models[0].sha256 = (await import('node:crypto')).createHash('sha256').update('not a model').digest('hex');
    writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
    await expect(openModel(d, 'mean-square')).rejects.toThrow(/model mean-square \(mean-square\.onnx\): onnxruntime cannot load it/);
  });

  it('reports every manifest problem with its path and the model id', async () => {
    const d = mkdtempSync(join(tmpdir(), 'models-'));
    writeFixtureModels(d);
    const m = JSON.parse(readFileSync(join(d, 'manifest.json'), 'utf8'));
    m.models[1].input.window = 0;
    m.models[1].normalisation.std = [1];
    m.models[0].score.output = 'nope';
    writeFileSync(join(d, 'manifest.json'), JSON.stringify(m));
    const err = await openModel(d, 'mean-square').catch((e: Error) => e);
    expect(String(err)).toMatch(/models\[1\] \(window-mean\)\.input\.window/);
    expect(String(err)).toMatch(/models\[1\] \(window-mean\)\.normalisation\.std: needs 2 values/);
    expect(String(err)).toMatch(/models\[0\] \(mean-square\)\.score\.output: "nope" is not one of the outputs/);
    await expect(openModel(dir, 'nope')).rejects.toThrow(/no model "nope" in .*manifest\.json \(it has: mean-square, window-mean\)/);
  });
});

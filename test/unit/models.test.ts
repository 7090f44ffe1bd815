import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { loadManifest, openModel } from '../../agent/inference/index.js';
import { trainAnomalyModel, type AnomalyConfig } from '../../scripts/train/lib/anomaly-training.js';
import { DatasetError, loadCmapss, loadSkabFile } from '../../scripts/train/lib/datasets.js';
import { Mlp } from '../../scripts/train/lib/mlp.js';
import { exportOnnx } from '../../scripts/train/lib/onnx-export.js';
import { checkAgainstOrt } from '../../scripts/train/lib/ort-check.js';
import { Prng } from '../../scripts/train/lib/prng.js';
import type { Head, WindowModel } from '../../scripts/train/lib/window-model.js';

const MODELS = resolve('models');
const tmp = mkdtempSync(join(tmpdir(), 'models-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function randomWindows(n: number, w: number, f: number, seed: number): Float32Array {
  const rng = new Prng(seed);
  return Float32Array.from({ length: n * w * f }, () => rng.gauss() * 2);
}

describe('shipped models (models/)', () => {
  const manifest = loadManifest(MODELS);

  it('ships stream-ad, skab-pump and cmapss-rul, each file matching its manifest sha256', () => {
    expect(manifest.models.map((m) => m.id)).toEqual(['stream-ad', 'skab-pump', 'cmapss-rul']);
    for (const m of manifest.models) {
      const digest = createHash('sha256').update(readFileSync(join(MODELS, m.file))).digest('hex');
      expect(digest, m.id).toBe(m.sha256);
    }
  });

  it('every model runs a batch in onnxruntime with finite outputs of the declared shape', async () => {
    for (const m of manifest.models) {
      const session = await ort.InferenceSession.create(readFileSync(join(MODELS, m.file)));
      const n = 7;
      const f = m.input.features.length;
      const out = await session.run({ [m.input.name]: new ort.Tensor('float32', randomWindows(n, m.input.window, f, 3), [n, m.input.window, f]) });
      for (const o of m.outputs) {
        const t = out[o.name]!;
        expect(t, `${m.id}.${o.name}`).toBeDefined();
        expect([[n], [n, 1]], `${m.id}.${o.name} dims`).toContainEqual([...t.dims]);
        expect([...(t.data as Float32Array)].every(Number.isFinite), `${m.id}.${o.name} finite`).toBe(true);
        if (m.task === 'anomaly') expect(Math.min(...(t.data as Float32Array)), 'error-like output is >= 0').toBeGreaterThanOrEqual(0);
      }
      await session.release();
    }
  });

  it('stream-ad, through the runtime, stays quiet on a steady noisy sensor and alerts once on a step', async () => {
    const runner = await openModel(MODELS, 'stream-ad');
    const rng = new Prng(9);
    const rows = Array.from({ length: 1200 }, (_, t) => ({ key: 's', ts: t * 1000, values: [20 + rng.gauss() * 0.5 + (t >= 900 ? 5 : 0)] }));
    const v = await runner.push(rows);
    const warmup = runner.warmupRows;
    expect(v.slice(0, warmup).every((x) => x === null)).toBe(true);
    expect(v.slice(warmup).every((x) => x !== null && x.score! >= 0 && x.score! <= 1)).toBe(true);
    const raised = v.flatMap((x, t) => (x?.changed && x.alert ? [t] : []));
    expect(raised).toEqual([900]); // quiet before the step, one alert at it
  });

  it('cmapss-rul predicts from the first cycle (edge padding), near the cap when healthy and low near failure', async () => {
    const runner = await openModel(MODELS, 'cmapss-rul');
    const entry = runner.entry;
    if (entry.normalisation.type !== 'fixed') throw new Error('cmapss-rul should use fixed normalisation');
    const { mean, std } = entry.normalisation;
    // A synthetic run to failure: sensors drift (with noise) from the training mean to their mean z
    // over the last 5 cycles of FD001's training engines (measured from train_FD001.txt),
    // accelerating towards the end as the degradation does.
    const wornZ = [2.0, 1.9, 2.2, -2.1, 1.9, 1.5, 2.3, -2.2, 1.9, 1.2, 2.1, 2.0, -2.1, -2.0];
    const rng = new Prng(12);
    const cycles = 200;
    const rows = Array.from({ length: cycles }, (_, t) => {
      const wear = (t / (cycles - 1)) ** 3;
      return { key: 'engine', ts: t, values: mean.map((m, k) => m + (wornZ[k]! * wear + 0.3 * rng.gauss()) * std[k]!) };
    });
    const v = await runner.push(rows);
    expect(v.every((x) => x !== null)).toBe(true);
    const rul = v.map((x) => x!.outputs.rul!);
    expect(Math.min(...rul.slice(0, 60))).toBeGreaterThan(80);
    expect(rul[cycles - 1]!).toBeLessThan(40);
    expect(v.slice(0, 60).some((x) => x!.alert)).toBe(false);
  });
});

describe('ONNX export', () => {
  const heads: { head: Head; sizes: (w: number, f: number) => number[] }[] = [
    { head: 'autoencoder', sizes: (w, f) => [w * f, 6, 2, 6, w * f] },
    { head: 'forecaster', sizes: (w, f) => [(w - 1) * f, 8, f] },
    { head: 'regressor', sizes: (w, f) => [w * f, 8, 4, 1] },
  ];
  for (const { head, sizes } of heads) {
    it(`${head}: onnxruntime and the JS forward pass agree (max |diff| < 1e-4)`, async () => {
      const w = 5;
      const f = 3;
      const mlp = new Mlp({ sizes: sizes(w, f), hidden: 'relu' }, new Prng(4));
      // Non-zero biases, so a bias wired wrong would show.
      for (const l of mlp.layers) l.bias.forEach((_, i) => (l.bias[i] = 0.1 * (i - 1)));
      const model: WindowModel = { head, window: w, features: f, outputName: head === 'regressor' ? 'rul' : 'error', outputScale: head === 'regressor' ? 10 : 1, levelWeight: head === 'regressor' ? [] : [0.5, 0, 2], mlp };
      const check = await checkAgainstOrt(exportOnnx(model, { name: head, doc: 'test' }), model, randomWindows(33, w, f, 5), 33);
      expect(check.windows).toBe(33);
      expect(check.maxAbsDiff).toBeLessThan(1e-4);
    });
  }

  it('regressor ensemble: the graph averages its members as the JS forward pass does', async () => {
    const members = [1, 2, 3].map((seed) => new Mlp({ sizes: [12, 5, 1], hidden: 'relu' }, new Prng(seed)));
    const model: WindowModel = { head: 'regressor', window: 4, features: 3, outputName: 'rul', outputScale: 125, levelWeight: [], mlp: members[0]!, ensemble: members.slice(1) };
    const x = randomWindows(20, 4, 3, 6);
    const check = await checkAgainstOrt(exportOnnx(model, { name: 'e', doc: 'e' }), model, x, 20);
    expect(check.maxAbsDiff).toBeLessThan(1e-4);
    // Not just the first member: the mean differs from it.
    const single = await checkAgainstOrt(exportOnnx({ ...model, ensemble: [] }, { name: 's', doc: 's' }), { ...model, ensemble: [] }, x, 20);
    expect(single.maxAbsDiff).toBeLessThan(1e-4);
  });

  it('refuses an export whose graph disagrees with the JS model', async () => {
    const mlp = new Mlp({ sizes: [8, 3, 8], hidden: 'relu' }, new Prng(1));
    const model: WindowModel = { head: 'autoencoder', window: 4, features: 2, outputName: 'error', outputScale: 1, levelWeight: [0, 0], mlp };
    const bytes = exportOnnx(model, { name: 't', doc: 't' });
    mlp.layers[0]!.bias[0]! += 1; // the JS model changes after export
    await expect(checkAgainstOrt(bytes, model, randomWindows(16, 4, 2, 2), 16)).rejects.toThrow(/disagree/);
  });
});

describe('training', () => {
  const cfg: AnomalyConfig = { head: 'autoencoder', window: 8, hidden: [6, 2, 6], activation: 'relu', levelWeights: [[1]], epochs: 2, batch: 32, lr: 2e-3, lrDecay: 0.9, seed: 7, clip: 10 };
  const series = (seed: number) => {
    const rng = new Prng(seed);
    return Array.from({ length: 3 }, () => Array.from({ length: 400 }, (_, t) => [Math.sin(t / 7) + 0.1 * rng.gauss()]));
  };
  const bytes = (c: AnomalyConfig) => exportOnnx(trainAnomalyModel(c, series(1), 1, 'test', true), { name: 't', doc: 't' });

  it('is deterministic: same seed, same ONNX bytes; another seed, other bytes', () => {
    const a = bytes(cfg);
    expect(Buffer.from(bytes(cfg)).equals(Buffer.from(a))).toBe(true);
    expect(Buffer.from(bytes({ ...cfg, seed: 8 })).equals(Buffer.from(a))).toBe(false);
  });
});

describe('data set loaders', () => {
  it('name the file and line of a malformed SKAB row', () => {
    const header = 'datetime;Accelerometer1RMS;Accelerometer2RMS;Current;Pressure;Temperature;Thermocouple;Voltage;Volume Flow RateRMS;anomaly;changepoint';
    writeFileSync(join(tmp, 'bad.csv'), `${header}\n2020-01-01 00:00:00;1;2;3;4;5;6;7;8;0;0\n2020-01-01 00:00:01;1;2;x;4;5;6;7;8;0;0\n`);
    expect(() => loadSkabFile(tmp, 'bad.csv')).toThrow(DatasetError);
    expect(() => loadSkabFile(tmp, 'bad.csv')).toThrow(/bad\.csv:3: column Current: not a finite number: "x"/);
  });

  it('name the file and line of a C-MAPSS row with a cycle out of order', () => {
    const dir = join(tmp, 'cm');
    const row = (u: number, c: number) => [u, c, ...new Array<number>(24).fill(1)].join(' ');
    mkdirSync(join(dir, 'cmapss'), { recursive: true });
    writeFileSync(join(dir, 'cmapss', 'train_FD001.txt'), `${row(1, 1)}\n${row(1, 3)}\n`);
    expect(() => loadCmapss(dir)).toThrow(/train_FD001\.txt:2: unit 1: cycle 3, expected 2/);
  });
});

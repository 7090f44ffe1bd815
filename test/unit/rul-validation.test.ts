import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Engine } from '../../scripts/train/lib/datasets.js';
import { Mlp } from '../../scripts/train/lib/mlp.js';
import { Prng } from '../../scripts/train/lib/prng.js';
import { summaryProjection } from '../../scripts/train/lib/rul-features.js';
import { drawCuts, foldsOf, scoreDraw } from '../../scripts/train/lib/rul-kfold.js';
import { readOofFiles, writeOofFile } from '../../scripts/train/lib/rul-oof-store.js';
import { checkRulAgainstOrt, exportRulOnnx, forwardRul, type RulModel } from '../../scripts/train/lib/rul-model.js';

const engine = (unit: number, cycles: number): Engine => ({ unit, rows: Array.from({ length: cycles }, () => new Float64Array(24)) });

describe('cmapss-rul validation protocol (scripts/train/lib/rul-kfold.ts)', () => {
  it('k-fold predicts every engine exactly once, and another seed assigns the folds differently', () => {
    const a = foldsOf(100, 5, 1);
    expect(a.flat().sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
    expect(a.every((f) => f.length === 20)).toBe(true);
    expect(foldsOf(100, 5, 2)).not.toEqual(a);
  });

  it('cuts like the official test set: one per engine, from cycle 31 (or 1..150 cycles left with the late rule)', () => {
    const engines = Array.from({ length: 50 }, (_, i) => engine(i + 1, 128 + 5 * i));
    for (let seed = 0; seed < 20; seed++) {
      const uniform = drawCuts(engines, seed, 31);
      const late = drawCuts(engines, seed, 31, 150);
      engines.forEach((e, i) => {
        expect(uniform[i]!).toBeGreaterThanOrEqual(31);
        expect(uniform[i]!).toBeLessThanOrEqual(e.rows.length);
        const left = e.rows.length - late[i]!;
        expect(left).toBeGreaterThanOrEqual(1);
        expect(left).toBeLessThanOrEqual(150);
        expect(late[i]!).toBeGreaterThanOrEqual(31);
      });
    }
  });

  it('scores the last observed cycle against the true RUL, capped and not', () => {
    const engines = [engine(1, 200), engine(2, 150)];
    // Predictions that are exactly the capped truth at every cycle.
    const mean = engines.map((e) => Float32Array.from(e.rows, (_, t) => Math.min(125, e.rows.length - (t + 1))));
    const f = scoreDraw(engines, { seed: 1, mean, sd: mean.map((m) => new Float32Array(m.length)) }, [40, 100], 125);
    expect(f.rmse_capped).toBe(0);
    expect(f.phm08_capped).toBe(0);
    // Engine 1 cut at 40 has 160 left: the capped prediction 125 is 35 early.
    expect(f.rmse).toBeCloseTo(Math.sqrt((35 ** 2 + 0) / 2), 6);
  });
});

describe('cmapss-rul graph (scripts/train/lib/rul-model.ts)', () => {
  it('onnxruntime gives what the JS forward pass gives for rul, rul_sd and service_within; the bound is below the estimate', async () => {
    const w = 6;
    const f = 3;
    const { p, k } = summaryProjection(w, f, { means: [2, 6], slopes: [3, 6] });
    const rng = new Prng(5);
    const model: RulModel = {
      window: w, features: f, projection: p, k,
      featureBias: Float32Array.from({ length: k }, () => 0.1 * rng.gauss()),
      members: [1, 2, 3].map((seed) => new Mlp({ sizes: [k, 5, 1], hidden: 'relu' }, new Prng(seed))),
      cap: 125, lower: { margin: 4, spread: 1.5 },
    };
    const x = Float32Array.from({ length: 40 * w * f }, () => rng.gauss());
    const check = await checkRulAgainstOrt(exportRulOnnx(model, { name: 't', doc: 't' }), model, x, 40);
    expect(check.windows).toBe(40);
    const o = forwardRul(model, x, 40);
    for (let i = 0; i < 40; i++) {
      expect(o.rul_sd[i]!).toBeGreaterThan(0);
      expect(o.service_within[i]!).toBeCloseTo(Math.max(0, o.rul[i]! - (4 + 1.5 * o.rul_sd[i]!)), 3);
    }
  });
});

describe('cmapss-rul stored k-fold predictions (scripts/train/lib/rul-oof-store.ts), reused by npm run train -- --kfold-from', () => {
  const dir = mkdtempSync(join(tmpdir(), 'rul-oof-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const engines = [engine(1, 40), engine(2, 33)];
  const oofOf = (seed: number) => ({
    seed,
    mean: engines.map((e) => Float32Array.from(e.rows, (_, t) => 125 - t / 3)),
    sd: engines.map((e) => Float32Array.from(e.rows, (_, t) => 1 + t / 7)),
  });
  const config = { window: 50, stride: 1, summary: { means: [5, 10] }, cvSeeds: [1, 2] };

  it('reads back exactly what was written, seeds in the order the config asks, from several files', () => {
    writeOofFile(join(dir, 'a.json'), [oofOf(2)], config);
    writeOofFile(join(dir, 'b.json'), [oofOf(1)], config);
    const got = readOofFiles([join(dir, 'a.json'), join(dir, 'b.json')], engines, [1, 2], config);
    expect(got.map((o) => o.seed)).toEqual([1, 2]);
    expect(got[1]!.mean).toEqual(oofOf(2).mean);
    expect(got[0]!.sd).toEqual(oofOf(1).sd);
  });

  it('refuses predictions of another config, naming the key that differs', () => {
    writeOofFile(join(dir, 'other.json'), [oofOf(1), oofOf(2)], { ...config, stride: 2 });
    expect(() => readOofFiles([join(dir, 'other.json')], engines, [1, 2], config)).toThrow(/other\.json: seed 1 was made with another config \(stride: 2 vs 1\)/);
    writeOofFile(join(dir, 'nested.json'), [oofOf(1), oofOf(2)], { ...config, summary: { means: [5, 20] } });
    expect(() => readOofFiles([join(dir, 'nested.json')], engines, [1, 2], config)).toThrow(/summary: \{"means":\[5,20\]\} vs \{"means":\[5,10\]\}/);
  });

  it('refuses files that miss a seed, an engine or a cycle, or are not such a file', () => {
    writeOofFile(join(dir, 'one.json'), [oofOf(1)], config);
    expect(() => readOofFiles([join(dir, 'one.json')], engines, [1, 2], config)).toThrow(/missing 2/);
    expect(() => readOofFiles([join(dir, 'one.json')], [engines[0]!, engine(2, 34)], [1], config)).toThrow(/seed 1 mean of engine 2: expected 34 cycles, found 33/);
    expect(() => readOofFiles([join(dir, 'one.json')], [engines[0]!], [1], config)).toThrow(/expected one array per engine \(1\), found 2/);
    writeFileSync(join(dir, 'old.json'), JSON.stringify([{ seed: 1, mean: [], sd: [] }]));
    expect(() => readOofFiles([join(dir, 'old.json')], engines, [1], config)).toThrow(/no config recorded/);
    writeFileSync(join(dir, 'cut.json'), '[{"seed": 1, "conf');
    expect(() => readOofFiles([join(dir, 'cut.json')], engines, [1], config)).toThrow(/cut\.json: not JSON/);
  });
});

import { describe, expect, it } from 'vitest';
import type { Engine } from '../../scripts/train/lib/datasets.js';
import { Mlp } from '../../scripts/train/lib/mlp.js';
import { Prng } from '../../scripts/train/lib/prng.js';
import { summaryProjection } from '../../scripts/train/lib/rul-features.js';
import { drawCuts, foldsOf, scoreDraw } from '../../scripts/train/lib/rul-kfold.js';
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

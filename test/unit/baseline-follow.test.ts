import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { loadManifest, openModel, type Row, type Verdict } from '../../agent/inference/index.js';
import { normalise } from '../../scripts/train/lib/contract.js';
import { writeFixtureModels } from '../helpers/onnx-fixtures.js';

/** The fixture `mean-square` (error = mean of the squared normalised window, W = 4, warm-up 8), with `normalisation.follow`. */
function fixtureWithFollow(follow: number[] | undefined, extra: Record<string, unknown> = {}): string {
  const dir = mkdtempSync(join(tmpdir(), 'follow-'));
  writeFixtureModels(dir);
  const path = join(dir, 'manifest.json');
  const manifest = JSON.parse(readFileSync(path, 'utf8')) as { models: { normalisation: Record<string, unknown> }[] };
  if (follow) manifest.models[0]!.normalisation.follow = follow;
  Object.assign(manifest.models[0]!.normalisation, extra);
  writeFileSync(path, JSON.stringify(manifest));
  return dir;
}

const series = (values: number[]): Row[] => values.map((v, i) => ({ key: 'pump1', ts: 1000 * (i + 1), values: [v] }));
const warm = [0, 2, 0, 2, 0, 2, 0, 2]; // mean 1, population std 1
const H = 3;
const a = 1 - 2 ** (-1 / H);

let following: string;
let frozen: string;
beforeAll(() => {
  following = fixtureWithFollow([H]);
  frozen = fixtureWithFollow(undefined);
});

describe('normalisation.follow: a baseline that follows drift after warm-up (README §1)', () => {
  it('after a lasting step the baseline settles on the new level: z decays as (1-a)^k, while a frozen baseline stays off', async () => {
    const rows = series([...warm, ...new Array<number>(30).fill(3)]);
    const out = await (await openModel(following, 'mean-square')).push(rows);
    const still = await (await openModel(frozen, 'mean-square')).push(rows);
    // Row k after warm-up is normalised by the baseline after rows < k: z_k = 2 (1-a)^k.
    const z = (k: number) => 2 * (1 - a) ** k;
    for (let k = 3; k < 30; k++) {
      const want = (z(k) ** 2 + z(k - 1) ** 2 + z(k - 2) ** 2 + z(k - 3) ** 2) / 4;
      expect(out[8 + k]!.outputs.error!).toBeCloseTo(want, 5);
      expect(still[8 + k]!.outputs.error!).toBeCloseTo(4, 5);
    }
    expect(out[37]!.alert).toBe(false);
    expect(still[37]!.alert).toBe(true);
  });

  it('moves the baseline by at most clip standard deviations per row: one wild reading does not drag it away', async () => {
    const out = await (await openModel(following, 'mean-square')).push(series([...warm, 1e9, 1, 1, 1, 1]));
    // The spike is clipped to z = 10, so the baseline moves to 1 + 10a, and the next row reads z = -10a.
    const z1 = -10 * a;
    const z2 = z1 * (1 - a);
    const z3 = z2 * (1 - a);
    expect(out[11]!.outputs.error!).toBeCloseTo((100 + z1 ** 2 + z2 ** 2 + z3 ** 2) / 4, 4);
  });

  it('agrees exactly with the offline contract the training tunes on (scripts/train/lib/contract.ts)', async () => {
    const values = [...warm, ...Array.from({ length: 60 }, (_, i) => Math.sin(i / 5) + i / 20)];
    const out = await (await openModel(following, 'mean-square')).push(series(values));
    const z = normalise({ window: 4, pad: 'none', clip: 10, normalisation: { type: 'warmup', warmup: 8, min_std: 1e-6, follow: [H] } }, values.map((v) => [v]), 1);
    for (let t = 8; t < values.length; t++) {
      const want = (z[t]! ** 2 + z[t - 1]! ** 2 + z[t - 2]! ** 2 + z[t - 3]! ** 2) / 4;
      expect(out[t]!.outputs.error!).toBeCloseTo(want, 5);
    }
  });

  it('is causal, batch-independent, and continues exactly after its state is saved and restored', async () => {
    const values = [...warm, ...Array.from({ length: 50 }, (_, i) => Math.cos(i / 3) + (i > 30 ? 4 : 0))];
    const strip = (vs: (Verdict | null)[]) => vs.map((v) => (v ? { ...v, modelSha256: undefined } : null));
    const all = strip(await (await openModel(following, 'mean-square')).push(series(values)));
    const prefix = strip(await (await openModel(following, 'mean-square')).push(series(values.slice(0, 30))));
    expect(prefix).toEqual(all.slice(0, 30));
    const one = await openModel(following, 'mean-square');
    const byOne: (Verdict | null)[] = [];
    for (const r of series(values)) byOne.push(...(await one.push([r])));
    expect(strip(byOne)).toEqual(all);
    const before = await openModel(following, 'mean-square');
    await before.push(series(values).slice(0, 25));
    const saved = JSON.parse(JSON.stringify(Object.fromEntries(before.exportState()))) as Record<string, never>;
    const after = await openModel(following, 'mean-square');
    after.importState('pump1', saved['pump1']!);
    expect(strip(await after.push(series(values).slice(25)))).toEqual(all.slice(25));
  });

  it('refuses a follow list that does not give one half-life per feature, naming the key', () => {
    expect(() => loadManifest(fixtureWithFollow(undefined, { follow_in_alert: 0 }))).toThrow(/normalisation\.follow_in_alert: applies only with "follow"/);
    const dir = fixtureWithFollow([3, 3]);
    expect(() => loadManifest(dir)).toThrow(/models\[0\] \(mean-square\)\.normalisation\.follow: needs 1 half-lives, one per feature/);
    const negative = fixtureWithFollow([-1]);
    expect(() => loadManifest(negative)).toThrow(/normalisation\.follow\[0\]: must be >= 0/);
  });

  it('follow_in_alert 0 stands still during an alert, so a lasting fault stays visible; the same rows batched or one by one agree', async () => {
    const slow = 30; // a slower baseline than H, so the fault is still over the limit when the alert rises
    const b = 1 - 2 ** (-1 / slow);
    const dir = fixtureWithFollow([slow], { follow_in_alert: 0 });
    const rows = series([...warm, ...new Array<number>(30).fill(3)]);
    const out = await (await openModel(dir, 'mean-square')).push(rows);
    // Raised by the 3rd post-warm-up row (its 2nd window over the limit); from the next row on the
    // baseline stays where that row left it: z stays 2(1-b)^3 and the alert never clears.
    expect(out[9]!.alert).toBe(false);
    expect(out[10]!.alert).toBe(true);
    expect(out[37]!.outputs.error!).toBeCloseTo((2 * (1 - b) ** 3) ** 2, 5);
    expect(out[37]!.alert).toBe(true);
    const one = await openModel(dir, 'mean-square');
    const byOne: (Verdict | null)[] = [];
    for (const r of rows) byOne.push(...(await one.push([r])));
    const strip = (vs: (Verdict | null)[]) => vs.map((v) => (v ? { ...v, modelSha256: undefined } : null));
    expect(strip(byOne)).toEqual(strip(out));
  });

  it('relearn_after: an alert that lasts that many rows moves the baseline to the new level, then clears and re-arms', async () => {
    const dir = fixtureWithFollow(undefined, { relearn_after: 10 });
    const out = await (await openModel(dir, 'mean-square')).push(series([...warm, ...new Array<number>(30).fill(3), ...new Array<number>(10).fill(9)]));
    const raised = out.map((v, i) => (v?.changed && v.alert ? i : -1)).filter((i) => i >= 0);
    const cleared = out.map((v, i) => (v?.changed && !v.alert ? i : -1)).filter((i) => i >= 0);
    // Raised at row 10, in alert for 10 rows, re-centred on 3: error 0 from there on, cleared after off_count 2.
    expect(raised[0]).toBe(10);
    expect(cleared[0]).toBeGreaterThan(18);
    expect(cleared[0]).toBeLessThan(25);
    expect(out[30]!.outputs.error!).toBeCloseTo(0, 6);
    // A new change (3 -> 9) raises a new alert against the new level.
    expect(raised[1]).toBeGreaterThan(38);
  });

  it('follow_std: the standard deviation follows a noisier normal (var -> var + b(z² var - var)), stands still in alert, and is saved with the key', async () => {
    const hs = 5;
    const b = 1 - 2 ** (-1 / hs);
    const dir = fixtureWithFollow(undefined, { follow_std: hs });
    const slowStd = fixtureWithFollow(undefined, { follow_std: 50 });
    const frozenHigh = fixtureWithFollow(undefined);
    // The alert limit at 6 (the warm-up's error is 1): a doubled noise (error 4) is under it, a step of 4 deviations (16) over it.
    for (const d of [dir, slowStd, frozenHigh]) {
      const path = join(d, 'manifest.json');
      const m = JSON.parse(readFileSync(path, 'utf8')) as { models: { score: { calibration: { factor: number } } }[] };
      m.models[0]!.score.calibration.factor = 6;
      writeFileSync(path, JSON.stringify(m));
    }
    // Noise doubles after the warm-up (1 +- 2 instead of 1 +- 1): z^2 = 4 / var, so var_k = 4 - 3 (1 - b)^k.
    const noisy = Array.from({ length: 40 }, (_, i) => (i % 2 === 0 ? -1 : 3));
    const rows = series([...warm, ...noisy]);
    const out = await (await openModel(dir, 'mean-square')).push(rows);
    const frozenOut = await (await openModel(frozenHigh, 'mean-square')).push(rows);
    const v = (k: number) => 4 - 3 * (1 - b) ** k;
    for (let t = 30; t < 48; t++) {
      const k = t - 8;
      const want = (4 / v(k) + 4 / v(k - 1) + 4 / v(k - 2) + 4 / v(k - 3)) / 4;
      expect(out[t]!.outputs.error!).toBeCloseTo(want, 4);
      expect(frozenOut[t]!.outputs.error!).toBeCloseTo(4, 5);
    }
    expect(out[47]!.outputs.error!, 'against the followed spread the noisier normal reads as normal').toBeLessThan(1.1);
    // A step of 4 standard deviations raises (a half-life of 50 rows widens the spread little in the 2 rows
    // before); while raised the spread stands still, so the error and the alert hold.
    const stepped = await (await openModel(slowStd, 'mean-square')).push(series([...warm, ...new Array<number>(30).fill(5)]));
    expect(stepped[11]!.alert).toBe(true);
    expect(stepped[37]!.alert).toBe(true);
    const held = stepped[37]!.outputs.error!;
    expect(stepped.slice(20, 38).every((x) => Math.abs(x!.outputs.error! - held) < 1e-9)).toBe(true);
    const strip = (vs: (Verdict | null)[]) => vs.map((x) => (x ? { ...x, modelSha256: undefined } : null));
    const before = await openModel(dir, 'mean-square');
    await before.push(rows.slice(0, 20));
    const saved = JSON.parse(JSON.stringify(Object.fromEntries(before.exportState()))) as Record<string, never>;
    const after = await openModel(dir, 'mean-square');
    after.importState('pump1', saved['pump1']!);
    expect(strip(await after.push(rows.slice(20)))).toEqual(strip(out.slice(20)));
    expect(() => loadManifest(fixtureWithFollow(undefined, { follow_std_clip: 2 }))).toThrow(/normalisation\.follow_std_clip: applies only with "follow_std"/);
  });
});

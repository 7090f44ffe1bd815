/**
 * The shipped streaming detector (models/stream-ad) on the cases an operator meets first, through
 * the runtime's public API (openModel / runner.push) exactly as the live agent calls it.
 * Noise comes from seeded generators; the seed is in each test's name.
 */
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel, type Row, type Verdict } from '../../agent/inference/index.js';
import { Prng } from '../../scripts/train/lib/prng.js';

const MODELS = resolve('models');
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 5);

async function run(values: number[], stepMs = MINUTE): Promise<(Verdict | null)[]> {
  const runner = await openModel(MODELS, 'stream-ad');
  try {
    const rows: Row[] = values.map((v, t) => ({ key: 'room/temp', ts: T0 + t * stepMs, values: [v] }));
    return await runner.push(rows);
  } finally {
    await runner.close();
  }
}

/** Rows where an alert is raised. */
const raisedAt = (v: (Verdict | null)[]) => v.flatMap((x, t) => (x?.changed && x.alert ? [t] : []));
const clearedAt = (v: (Verdict | null)[]) => v.flatMap((x, t) => (x?.changed && !x.alert ? [t] : []));

describe('stream-ad on synthetic cases', () => {
  it('slow normal drift 20 -> 25 °C over 2,000 readings (noise σ 0.1, seed 1): no alert', async () => {
    const rng = new Prng(1);
    const v = await run(Array.from({ length: 2000 }, (_, t) => 20 + (5 * t) / 1999 + 0.1 * rng.gauss()));
    expect(raisedAt(v)).toEqual([]);
  });

  it('a lasting level shift (seed 2): one alert at the shift, cleared and quiet within 500 rows', async () => {
    const rng = new Prng(2);
    const v = await run(Array.from({ length: 2500 }, (_, t) => 20 + 0.1 * rng.gauss() + (t >= 1000 ? 2 : 0)));
    const raised = raisedAt(v);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toBeGreaterThanOrEqual(1000);
    expect(raised[0]).toBeLessThan(1005);
    const cleared = clearedAt(v).filter((t) => t > raised[0]!);
    expect(cleared.length).toBeGreaterThanOrEqual(1);
    expect(cleared[0]).toBeLessThan(1500);
    expect(v.slice(1500).every((x) => x && !x.alert)).toBe(true); // the new level is the new normal
  });

  it('a fault that lasts 300 rows and ends (seed 9): one alert, raised at its start, held while it lasts, cleared within 60 rows of its end', async () => {
    const rng = new Prng(9);
    const v = await run(Array.from({ length: 2000 }, (_, t) => 20 + 0.1 * rng.gauss() + (t >= 1000 && t < 1300 ? 2 : 0)));
    expect(raisedAt(v)).toEqual([1000]);
    // Held against the level before the onset, although the running baseline takes the new level in.
    expect(v.slice(1000, 1300).every((x) => x?.alert)).toBe(true);
    const cleared = clearedAt(v);
    expect(cleared).toHaveLength(1);
    expect(cleared[0]).toBeGreaterThanOrEqual(1300);
    expect(cleared[0]).toBeLessThan(1360);
  });

  it('the same spike every hour (1.5 °C over noise σ 0.1, seed 10): alerts among the first three at most, the 60 after them are routine', async () => {
    const rng = new Prng(10);
    const v = await run(Array.from({ length: 4000 }, (_, t) => 20 + 0.1 * rng.gauss() + (t >= 300 && t % 60 === 0 ? 1.5 : 0)));
    // The likelihood stage judges each surprise against the stream's own history of surprises.
    const raised = raisedAt(v);
    expect(raised.length).toBeGreaterThanOrEqual(1);
    expect(raised[0]).toBe(300);
    expect(raised.every((t) => t <= 420)).toBe(true);
  });

  it('a spike (seed 3): one alert, at the spike', async () => {
    const rng = new Prng(3);
    const v = await run(Array.from({ length: 1500 }, (_, t) => 20 + 0.1 * rng.gauss() + (t === 1000 ? 3 : 0)));
    expect(raisedAt(v)).toEqual([1000]);
  });

  it('constant during warm-up, then steps of one quantisation step (0.5 °C) now and then: no alert', async () => {
    const values: number[] = [];
    let level = 20;
    for (let t = 0; t < 3000; t++) {
      if (t >= 400 && t % 300 === 0) level += t % 600 === 0 ? 0.5 : -0.5;
      values.push(level);
    }
    const v = await run(values);
    expect(raisedAt(v)).toEqual([]);
  });

  it('a sensor that sticks after normal noise (seed 5): one alert', async () => {
    const rng = new Prng(5);
    const values = Array.from({ length: 1000 }, () => 20 + 0.1 * rng.gauss());
    const stuckAt = values[799]!;
    for (let t = 800; t < 1000; t++) values[t] = stuckAt;
    const v = await run(values);
    const raised = raisedAt(v);
    expect(raised).toHaveLength(1);
    expect(raised[0]).toBeGreaterThanOrEqual(800);
    expect(raised[0]).toBeLessThan(830);
  });

  it('a daily cycle (amplitude 3 °C, 5-minute readings for 10 days, noise σ 0.1, seed 6): no alert', async () => {
    const rng = new Prng(6);
    const perDay = 288;
    const v = await run(Array.from({ length: 10 * perDay }, (_, t) => 20 + 3 * Math.sin((2 * Math.PI * t) / perDay) + 0.1 * rng.gauss()), 5 * MINUTE);
    expect(raisedAt(v)).toEqual([]);
  });

  /** The demo's healthy simulated sensors (agent/sources/simulator): 20 + 5 sin((t + 7i)/divisor) + uniform noise of width 1, 8 phases, 10 ms apart. */
  const demoSine = (divisor: number, rows: number) =>
    Array.from({ length: 8 }, (_, i) => {
      const rng = new Prng(40 + i);
      return Array.from({ length: rows }, (_, t) => 20 + 5 * Math.sin((t + i * 7) / divisor) + (rng.next() - 0.5));
    });

  it.each([
    ['the demo (npm run demo -- --no-fault): period 377 readings', 60],
    ['faster: period 188 readings', 30],
    ['faster still: period 126 readings', 20],
  ])('a healthy fast sine, %s, 8 phases, 6,000 readings each (seeds 40-47): no alert', async (_name, divisor) => {
    for (const values of demoSine(divisor, 6000)) expect(raisedAt(await run(values, 10))).toEqual([]);
  });

  it('a healthy slower sine (period 942 readings, seeds 40-47): at most one alert, in its first period (before the range of its swing is known), none after', async () => {
    for (const values of demoSine(150, 6000)) {
      const raised = raisedAt(await run(values, 10));
      expect(raised.length).toBeLessThanOrEqual(1);
      expect(raised.every((t) => t < 942)).toBe(true);
    }
  });

  it('is strictly causal: the scores of a prefix do not change when later rows are cut (seed 7)', async () => {
    const rng = new Prng(7);
    const values = Array.from({ length: 1200 }, (_, t) => 20 + Math.sin(t / 50) + 0.2 * rng.gauss() + (t > 900 ? 3 : 0));
    const full = await run(values);
    for (const cut of [151, 600, 901, 1000]) {
      const prefix = await run(values.slice(0, cut));
      expect(prefix.map((x) => x && [x.score, x.value, x.alert])).toEqual(full.slice(0, cut).map((x) => x && [x.score, x.value, x.alert]));
    }
  });

  it('survives a restart: state saved as JSON after row 700 and restored gives the verdicts of an uninterrupted run (seed 8)', async () => {
    const rng = new Prng(8);
    // The shift at 680 puts the cut inside a held alert: its pre-onset reference must survive the restart.
    const values = Array.from({ length: 1500 }, (_, t) => 20 + Math.sin(t / 40) + 0.2 * rng.gauss() + (t > 680 ? 5 : 0));
    const rows: Row[] = values.map((v, t) => ({ key: 'room/temp', ts: T0 + t * MINUTE, values: [v] }));
    const full = await run(values);
    const first = await openModel(MODELS, 'stream-ad');
    expect((await first.push(rows.slice(0, 700)))[699]?.alert).toBe(true);
    const saved = JSON.parse(JSON.stringify([...first.exportState()])) as [string, Parameters<typeof first.importState>[1]][];
    await first.close();
    const second = await openModel(MODELS, 'stream-ad');
    for (const [key, state] of saved) second.importState(key, state);
    const rest = await second.push(rows.slice(700));
    await second.close();
    expect(rest.map((x) => x && [x.score, x.value, x.alert])).toEqual(full.slice(700).map((x) => x && [x.score, x.value, x.alert]));
  });

  it('refuses a manifest whose alert hold is missing or out of range, and a saved hold memory that is malformed, naming what is wrong', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'stream-ad-'));
    cpSync(MODELS, dir, { recursive: true });
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { models: { id: string; score: { calibration: Record<string, unknown> } }[] };
    const entry = manifest.models.find((m) => m.id === 'stream-ad')!;
    const hold = entry.score.calibration['hold'];
    delete entry.score.calibration['hold'];
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await expect(openModel(dir, 'stream-ad')).rejects.toThrow(/\(stream-ad\)\.alert\.clear_output: "departure" is neither/);
    entry.score.calibration['hold'] = { ...(hold as object), max_rows: 0 };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await expect(openModel(dir, 'stream-ad')).rejects.toThrow(/\(stream-ad\)\.score\.calibration\.hold\.max_rows/);
    const shift = (hold as { shift: object }).shift;
    entry.score.calibration['hold'] = { ...(hold as object), shift: { ...shift, range_margin: -1 } };
    writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
    await expect(openModel(dir, 'stream-ad')).rejects.toThrow(/\(stream-ad\)\.score\.calibration\.hold\.shift\.range_margin/);

    const runner = await openModel(MODELS, 'stream-ad');
    try {
      await runner.push(Array.from({ length: 300 }, (_, t) => ({ key: 'room/temp', ts: T0 + t * MINUTE, values: [20 + (t % 7) * 0.01] })));
      const saved = JSON.parse(JSON.stringify(runner.exportState().get('room/temp'))) as Parameters<typeof runner.importState>[1];
      saved.online!.hold = { xs: 'warm' as unknown as number };
      expect(() => runner.importState('room/temp', saved)).toThrow(/key room\/temp does not fit model stream-ad: alert hold memory field xs is not a finite number/);
      saved.online!.hold = {};
      saved.online!.onset.lik = { n: 1, mean: Number.NaN, var: 0, short: 0 } as never;
      expect(() => runner.importState('room/temp', saved)).toThrow(/likelihood memory malformed/);
    } finally {
      await runner.close();
    }
  });
});

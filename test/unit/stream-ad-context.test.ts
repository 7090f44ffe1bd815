/**
 * stream-ad 2.3's context novelty (agent/inference/context-novelty.ts, README §5c) through the
 * runtime's public API (openModel / runner.push / exportState / importState), as the live agent
 * calls it: a change of pattern without a change of level is caught, its memory is bounded per
 * series, survives a restart, and a malformed or oversized saved memory is refused by name.
 */
import { describe, expect, it } from 'vitest';
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { openModel, type Row, type Verdict } from '../../agent/inference/index.js';
import { MAX_SAVED_STATE_CHARS, parseSavedState } from '../../agent/inference/key-state.js';
import { Prng } from '../../scripts/train/lib/prng.js';

const MODELS = resolve('models');
const MINUTE = 60_000;
const T0 = Date.UTC(2026, 0, 5);

type Entry = { id: string; score: { calibration: Record<string, unknown> } };

/** A copy of the shipped models whose stream-ad entry is changed by `edit`. */
function modelsWith(edit: (calibration: Record<string, unknown>) => void): string {
  const dir = mkdtempSync(join(tmpdir(), 'stream-ad-context-'));
  cpSync(MODELS, dir, { recursive: true });
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')) as { models: Entry[] };
  edit(manifest.models.find((m) => m.id === 'stream-ad')!.score.calibration);
  writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
  return dir;
}

const rowsOf = (values: number[]): Row[] => values.map((v, t) => ({ key: 'line/load', ts: T0 + t * MINUTE, values: [v] }));

async function run(values: number[], dir = MODELS): Promise<(Verdict | null)[]> {
  const runner = await openModel(dir, 'stream-ad');
  try {
    return await runner.push(rowsOf(values));
  } finally {
    await runner.close();
  }
}

const raisedAt = (v: (Verdict | null)[]) => v.flatMap((x, t) => (x?.changed && x.alert ? [t] : []));
const maxScore = (v: (Verdict | null)[], from: number, to: number) => Math.max(...v.slice(from, to).map((x) => x?.score ?? 0));

/** A square wave that becomes a sine of the same period, level and range at row 3000 (seed 11). */
function squareThenSine(): number[] {
  const rng = new Prng(11);
  return Array.from({ length: 4000 }, (_, t) => {
    const phase = Math.sin((2 * Math.PI * t) / 40);
    return 20 + (t < 3000 ? Math.sign(phase) : phase) + 0.05 * rng.gauss();
  });
}

describe('stream-ad context novelty', () => {
  it('a change of shape without a change of level (square wave -> sine, same period and range, seed 11): one alert, at the change; the level score alone stays quiet', async () => {
    const values = squareThenSine();
    const shipped = await run(values);
    expect(raisedAt(shipped)).toHaveLength(1);
    expect(raisedAt(shipped)[0]).toBeGreaterThanOrEqual(3000);
    expect(raisedAt(shipped)[0]).toBeLessThan(3020);
    const levelOnly = await run(values, modelsWith((c) => delete c['context']));
    expect(raisedAt(levelOnly)).toEqual([]);
    expect(maxScore(levelOnly, 3000, 3100)).toBeLessThan(0.2);
  });

  it('keeps a fixed memory per series (20,000 noisy readings, seed 13) and gives the verdicts of an uninterrupted run after a restart inside the change', async () => {
    const rng = new Prng(13);
    const noise = Array.from({ length: 20_000 }, () => 20 + rng.gauss());
    const first = await openModel(MODELS, 'stream-ad');
    await first.push(rowsOf(noise));
    const text = JSON.stringify(first.exportState().get('line/load'));
    await first.close();
    const ctx = (parseSavedState(text).online!.onset as { ctx: { counts_rle: number[]; last: number[] } }).ctx;
    // Saved with runs of zeros as one number each: 4,096 counts in all, fewer numbers written.
    expect(ctx.counts_rle.reduce((n, v) => n + (v < 0 ? -v : 1), 0)).toBe(4096);
    expect(ctx.counts_rle.length).toBeLessThan(4096);
    expect(ctx.last).toHaveLength(3);
    expect(text.length).toBeLessThan(64 * 1024);

    const values = squareThenSine();
    const full = await run(values);
    const before = await openModel(MODELS, 'stream-ad');
    await before.push(rowsOf(values).slice(0, 3005));
    const saved = JSON.stringify(before.exportState().get('line/load'));
    await before.close();
    const after = await openModel(MODELS, 'stream-ad');
    after.importState('line/load', parseSavedState(saved));
    const rest = await after.push(rowsOf(values).slice(3005));
    await after.close();
    expect(rest.map((x) => x && [x.score, x.alert])).toEqual(full.slice(3005).map((x) => x && [x.score, x.alert]));
  });

  it('refuses a malformed or oversized saved context memory and an out-of-range manifest table, naming what is wrong', async () => {
    const runner = await openModel(MODELS, 'stream-ad');
    await runner.push(rowsOf(squareThenSine().slice(0, 600)));
    const good = JSON.stringify(runner.exportState().get('line/load'));
    const bad = parseSavedState(good);
    (bad.online!.onset as { ctx: { counts_rle: number[] } }).ctx.counts_rle.push(-1);
    expect(() => runner.importState('line/load', bad)).toThrow(/saved state of key line\/load does not fit model stream-ad: context memory does not have 4096 counts/);
    const badBucket = parseSavedState(good);
    (badBucket.online!.onset as { ctx: { last: number[] } }).ctx.last[0] = 99;
    expect(() => runner.importState('line/load', badBucket)).toThrow(/context memory does not have 3 buckets/);
    await runner.close();
    expect(() => parseSavedState(' '.repeat(MAX_SAVED_STATE_CHARS + 1))).toThrow(/saved state is 1000001 characters, more than the 1000000 allowed/);
    expect(() => parseSavedState('[1]')).toThrow(/not a JSON object/);

    const huge = modelsWith((c) => ((c['context'] as Record<string, unknown>)['table'] = 1_000_000));
    await expect(openModel(huge, 'stream-ad')).rejects.toThrow(/\(stream-ad\)\.score\.calibration\.context\.table/);
  });
});

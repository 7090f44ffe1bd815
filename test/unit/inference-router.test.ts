import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { openModel } from '../../agent/inference/index.js';
import { Binding, Router } from '../../agent/inference/router.js';
import type { StoredReading } from '../../agent/types.js';
import { writeFixtureModels } from '../helpers/onnx-fixtures.js';

let dir: string;
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'router-'));
  writeFixtureModels(dir);
});

let nextId = 1;
const reading = (sensor: string, ts: number, value: number): StoredReading => ({ id: nextId++, sensor, ts, value, timeSource: 'sensor', source: 'mqtt', boot: 1 });

describe('router', () => {
  it('makes a multivariate row once every channel has news, from each channel\'s latest value', async () => {
    const b = new Binding('pump', { model: 'window-mean', asset: 'pump1', channels: { a: 'pump1/a', b: 'pump1/b' }, max_series: 1000 }, await openModel(dir, 'window-mean'));
    const router = new Router([b]);
    const rows = (rs: StoredReading[]) => router.route(rs).rows.get(b) ?? [];
    expect(rows([reading('pump1/a', 1000, 1), reading('pump1/a', 1001, 2)])).toEqual([]); // b has not spoken yet
    const first = rows([reading('pump1/b', 1002, 10), reading('other/x', 1003, 5)]);
    expect(first).toEqual([{ key: 'pump1', ts: 1002, values: [2, 10], ref: nextId - 2 }]);
    expect(rows([reading('pump1/b', 1004, 11)])).toEqual([]); // only b is new
    expect(rows([reading('pump1/a', 1005, 3)])).toEqual([{ key: 'pump1', ts: 1005, values: [3, 11], ref: nextId - 1 }]);
  });

  it('gives each matching sensor its own series, up to max_series; the rest are counted unscored', async () => {
    const b = new Binding('any', { model: 'mean-square', sensors: ['site/+/temp'], max_series: 2 }, await openModel(dir, 'mean-square'));
    const router = new Router([b]);
    const { rows, unscored } = router.route([
      reading('site/a/temp', 1, 20),
      reading('site/b/temp', 1, 21),
      reading('site/a/hum', 1, 50), // does not match the filter
      reading('site/c/temp', 1, 22), // third series: over the cap
      reading('site/a/temp', 2, 20.5),
    ]);
    expect(rows.get(b)!.map((r) => r.key)).toEqual(['site/a/temp', 'site/b/temp', 'site/a/temp']);
    expect(unscored.get(b)).toBe(1);
  });
});

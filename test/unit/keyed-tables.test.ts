import { describe, expect, it } from 'vitest';
import { InferenceStateStore } from '../../agent/store/inference-state-store.js';
import { capCursors, capDropsUnreported, CURSORS_SHARE_BYTES, DROPS_UNREPORTED_SHARE_BYTES, OTHER_SENSOR, SENSOR_SEQ_SHARE_BYTES } from '../../agent/store/keyed-tables.js';
import { readCounters } from '../../agent/store/reading-store.js';
import { RELEARN_REQUESTS_KEPT, RelearnStore } from '../../agent/store/relearn-store.js';
import { freshStore } from '../helpers/store.js';

const rows = (db: ReturnType<typeof freshStore>['db'], table: string) => db.prepare(`SELECT count(*) FROM ${table}`).pluck().get() as number;

describe('tables keyed by sensor or stream id stay within their shares (README "Disk budget")', () => {
  it('sensor_seq forgets the longest silent sensors, counts them, and keeps detecting gaps of the others', () => {
    const { db, store } = freshStore('seq-share');
    const ids = 12_000; // ~50 bytes each: twice the share
    store.commit([{ source: 'mqtt', trackSeq: true, readings: [{ sensor: 'steady', ts: 1, timeSource: 'gateway-synced', value: 1, seq: 1 }] }], 1);
    for (let i = 0; i < ids; i += 1000) {
      const readings = Array.from({ length: 1000 }, (_, k) => ({ sensor: `new-${String(i + k).padStart(5, '0')}`, ts: 2, timeSource: 'gateway-synced' as const, value: 1, seq: 7 }));
      // The steady sensor reports in every commit, so it is never the longest silent.
      readings.push({ sensor: 'steady', ts: 10 + i, timeSource: 'gateway-synced', value: 1, seq: 2 + i / 1000 });
      store.commit([{ source: 'mqtt', trackSeq: true, readings }], 10 + i);
    }
    store.commit([{ source: 'mqtt', trackSeq: true, readings: [{ sensor: 'steady', ts: 99_999, timeSource: 'gateway-synced', value: 1, seq: 20 }] }], 99_999);
    const bytes = db.prepare('SELECT sum(length(source) + length(sensor) + 32) FROM sensor_seq').pluck().get() as number;
    const forgotten = readCounters(db).find((c) => c.name === 'seq_forgotten')?.value ?? 0;
    expect(bytes).toBeLessThanOrEqual(SENSOR_SEQ_SHARE_BYTES);
    expect(forgotten).toBeGreaterThan(0);
    expect(rows(db, 'sensor_seq') + forgotten).toBe(ids + 1);
    // steady went 2..13 then 20: one gap of 6, still seen after the flood.
    expect(readCounters(db).find((c) => c.name === 'seq_gaps' && c.label === 'steady')?.value).toBe(6);
  });

  it('drops waiting for a batch past their share fold into (other): the total stays exact', () => {
    const { db } = freshStore('drops-share');
    const add = db.prepare('INSERT INTO drops_unreported (sensor, count) VALUES (?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 5000; i++) add.run(`sensor-${i}`, 1 + (i % 3));
    })();
    const total = () => db.prepare('SELECT sum(count) FROM drops_unreported').pluck().get() as number;
    const before = total();
    expect(capDropsUnreported(db)).toBeGreaterThan(0);
    expect(total()).toBe(before);
    expect(db.prepare('SELECT sum(length(sensor) + 32) FROM drops_unreported').pluck().get()).toBeLessThanOrEqual(DROPS_UNREPORTED_SHARE_BYTES);
    expect(db.prepare('SELECT count FROM drops_unreported WHERE sensor = ?').pluck().get(OTHER_SENSOR)).toBeGreaterThan(0);
    // The largest counts are the ones kept by name.
    expect(db.prepare('SELECT min(count) FROM drops_unreported WHERE sensor != ?').pluck().get(OTHER_SENSOR)).toBeGreaterThan(1);
  });

  it('serial stream positions past their share lose the oldest boot sessions first', () => {
    const { db } = freshStore('cursor-share');
    const put = db.prepare('INSERT INTO source_cursors (source, stream, position, updated_at) VALUES (?, ?, ?, ?)');
    db.transaction(() => {
      for (let i = 0; i < 10_000; i++) put.run('serial', `dev-1/${i}/1`, i, i);
    })();
    expect(capCursors(db)).toBeGreaterThan(0);
    expect(db.prepare('SELECT sum(length(source) + length(stream) + 32) FROM source_cursors').pluck().get()).toBeLessThanOrEqual(CURSORS_SHARE_BYTES);
    expect(db.prepare("SELECT position FROM source_cursors WHERE stream = 'dev-1/9999/1'").pluck().get()).toBe(9999);
    expect(db.prepare("SELECT position FROM source_cursors WHERE stream = 'dev-1/0/1'").pluck().get()).toBeUndefined();
  });

  it('the inference state saves what fits its share, the runner’s oldest series first, and rows no longer saved go before them', () => {
    const { db } = freshStore('state-share');
    const states = new InferenceStateStore(db);
    const sha = Buffer.alloc(32, 1);
    const row = (key: string) => ({ binding: 'anomaly', key, modelSha256: sha, state: 'x'.repeat(1000) });
    states.save([row('old-model-series')], 1);
    const r = states.save(Array.from({ length: 100 }, (_, i) => row(`s${i}`)), 2, 50_000);
    expect(r.saved).toBe(46);
    expect(r.skipped).toBe(54);
    expect(r.stale).toBe(1);
    expect(states.bytes()).toBeLessThanOrEqual(50_000);
    expect(states.load().map((x) => x.key)).toContain('s0');
    expect(states.load().map((x) => x.key)).not.toContain('s99');
  });

  it('done relearn requests are kept up to their count, pending ones always', () => {
    const { db } = freshStore('relearn-kept');
    const relearn = new RelearnStore(db);
    for (let i = 0; i < 200; i++) relearn.markDone(relearn.request('sensor', `s${i}`), 1);
    const pending = relearn.request('all', '');
    relearn.markDone(relearn.request('sensor', 'last'), 0);
    expect(rows(db, 'relearn_requests')).toBeLessThanOrEqual(RELEARN_REQUESTS_KEPT + 1);
    expect(relearn.pending().map((p) => p.id)).toEqual([pending]);
  });
});
